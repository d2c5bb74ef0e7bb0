package controlplane

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// front is the cluster's controlPlaneEndpoint for the lab's own processes
// on this machine (kubeadm, hollow kubelets, kubectl, the lab's requests):
// a TCP relay on 127.0.0.1 to the members' API servers in rotation, the
// next one when a dial fails. Nodes and the provisioner never use it: they
// go through the cloud's load balancer, which the lab models strictly
// (test/lab/loadbalancer.go).
type front struct {
	ln      net.Listener
	targets func() []string
	next    atomic.Uint32
	wg      sync.WaitGroup
}

func newFront(targets func() []string) (*front, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &front{ln: ln, targets: targets}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *front) addr() string { return f.ln.Addr().String() }

func (f *front) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go f.relay(c)
	}
}

func (f *front) relay(c net.Conn) {
	defer c.Close()
	ts := f.targets()
	if len(ts) == 0 {
		return
	}
	start := int(f.next.Add(1))
	var up net.Conn
	for i := range ts {
		var err error
		if up, err = net.DialTimeout("tcp", ts[(start+i)%len(ts)], 2*time.Second); err == nil {
			break
		}
	}
	if up == nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

func (f *front) close() {
	_ = f.ln.Close()
	f.wg.Wait()
}
