package sshd

import (
	"net"
	"sync"
)

// maxQueued bounds what a slow client leaves queued; SSH's channel windows
// keep real traffic far below it.
const maxQueued = 8 << 20

// queuedConn makes writes asynchronous. host.Dial hands out net.Pipe ends,
// which have no buffer, and both SSH peers write their version line before
// reading: without a queue on one side they wait on each other forever.
type queuedConn struct {
	net.Conn
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []byte
	err    error
	closed bool
}

func newQueuedConn(c net.Conn) *queuedConn {
	q := &queuedConn{Conn: c}
	q.cond = sync.NewCond(&q.mu)
	go q.flush()
	return q
}

func (q *queuedConn) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.queue) > maxQueued && q.err == nil && !q.closed {
		q.cond.Wait()
	}
	if q.err != nil {
		return 0, q.err
	}
	if q.closed {
		return 0, net.ErrClosed
	}
	q.queue = append(q.queue, p...)
	q.cond.Broadcast()
	return len(p), nil
}

func (q *queuedConn) flush() {
	for {
		q.mu.Lock()
		for len(q.queue) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.queue) == 0 && q.closed {
			q.mu.Unlock()
			q.Conn.Close()
			return
		}
		buf := q.queue
		q.queue = nil
		q.mu.Unlock()
		_, err := q.Conn.Write(buf)
		q.mu.Lock()
		q.cond.Broadcast()
		if err != nil {
			q.err = err
			q.queue = nil
			q.mu.Unlock()
			q.Conn.Close()
			return
		}
		q.mu.Unlock()
	}
}

// Close sends what is queued, then closes.
func (q *queuedConn) Close() error {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
	return nil
}
