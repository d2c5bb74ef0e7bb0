package gce

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

// selfLinkBase is how Compute spells links in replies, whatever endpoint
// was called (https://cloud.google.com/compute/docs/reference/rest/v1).
const selfLinkBase = "https://www.googleapis.com/compute/v1/"

// opFailure is an error a DONE operation reports in its error field.
type opFailure struct{ code, message string }

// dedupe returns the operation an earlier request with the same requestId
// made: Compute "will know to ignore the request if it has already been
// completed" and answers with that operation, whatever the new body says
// (computepb InsertInstanceRequest.request_id). A requestId must be a
// valid, non-zero UUID.
func (s *Server) dedupe(r *http.Request) (*computepb.Operation, string, *Error) {
	id := r.URL.Query().Get("requestId")
	if id == "" {
		return nil, "", nil
	}
	u, err := uuid.Parse(id)
	if err != nil || u == uuid.Nil {
		return nil, "", invalidField("requestId", id)
	}
	if name, ok := s.st.requests[id]; ok {
		return clone(s.st.ops[name].pb), id, nil
	}
	return nil, id, nil
}

// startOperation records an operation that is PENDING now, RUNNING after
// half the delay and DONE after the delay, when effect runs (under the
// lock) and may fail it; hook then runs without the lock.
func (s *Server) startOperation(c *call, requestID, opType, target string, targetID uint64, effect func() (*opFailure, func())) *computepb.Operation {
	b := make([]byte, 8)
	rand.Read(b)
	name := "operation-" + time.Now().UTC().Format("20060102150405") + "-" + hex.EncodeToString(b)
	scope := "projects/" + c.project + "/global"
	pb := &computepb.Operation{
		Kind: proto.String("compute#operation"), Id: proto.Uint64(s.st.id()), Name: proto.String(name),
		OperationType: proto.String(opType), TargetLink: proto.String(selfLinkBase + target), TargetId: proto.Uint64(targetID),
		Status: computepb.Operation_PENDING.Enum(), Progress: proto.Int32(0), User: proto.String("lab@" + c.project + ".iam.gserviceaccount.com"),
		InsertTime: proto.String(time.Now().Format(time.RFC3339Nano)),
	}
	switch {
	case c.zone != "":
		pb.Zone = proto.String(selfLinkBase + "projects/" + c.project + "/zones/" + c.zone)
		scope = "projects/" + c.project + "/zones/" + c.zone
	case c.region != "":
		pb.Region = proto.String(selfLinkBase + "projects/" + c.project + "/regions/" + c.region)
		scope = "projects/" + c.project + "/regions/" + c.region
	}
	pb.SelfLink = proto.String(selfLinkBase + scope + "/operations/" + name)
	op := &operation{pb: pb, done: make(chan struct{})}
	s.st.ops[name] = op
	if requestID != "" {
		s.st.requests[requestID] = name
	}
	s.after(s.opts.OperationDelay/2, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if op.pb.GetStatus() != computepb.Operation_PENDING {
			return // timers may fire out of order: never move back from DONE
		}
		op.pb.Status = computepb.Operation_RUNNING.Enum()
		op.pb.StartTime = proto.String(time.Now().Format(time.RFC3339Nano))
		op.pb.Progress = proto.Int32(50)
	})
	s.after(s.opts.OperationDelay, func() {
		s.mu.Lock()
		fail, hook := s.runEffect(effect)
		op.pb.Status = computepb.Operation_DONE.Enum()
		op.pb.Progress = proto.Int32(100)
		op.pb.EndTime = proto.String(time.Now().Format(time.RFC3339Nano))
		if fail != nil {
			// Only the error field: the case the client library's own
			// Operation.Wait reports as success (compute apiv1 operations.go).
			op.pb.Error = &computepb.Error{Errors: []*computepb.Errors{{Code: proto.String(fail.code), Message: proto.String(fail.message)}}}
		}
		close(op.done)
		s.mu.Unlock()
		if hook != nil {
			hook()
		}
	})
	return clone(pb)
}

func (s *Server) findOperation(c *call) (*operation, *Error) {
	op, ok := s.st.ops[c.name]
	if !ok {
		return nil, notFound(c.resource)
	}
	// An operation is found only in its own scope.
	pb := op.pb
	if !strings.HasPrefix(strings.TrimPrefix(pb.GetSelfLink(), selfLinkBase), "projects/"+c.project+"/") {
		return nil, notFound(c.resource)
	}
	if c.zone != "" && lastSegment(pb.GetZone()) != c.zone || c.region != "" && lastSegment(pb.GetRegion()) != c.region ||
		c.zone == "" && c.region == "" && (pb.GetZone() != "" || pb.GetRegion() != "") {
		return nil, notFound(c.resource)
	}
	return op, nil
}

func (s *Server) getOperation(r *http.Request, c *call) (proto.Message, *Error, func()) {
	op, e := s.findOperation(c)
	if e != nil {
		return nil, e, nil
	}
	return clone(op.pb), nil, nil
}

// maxWait: the wait method returns when the operation is DONE or after
// about two minutes, whichever comes first
// (https://cloud.google.com/compute/docs/reference/rest/v1/zoneOperations/wait).
const maxWait = 2 * time.Minute

// waitOperation blocks until the operation is DONE, the wait times out,
// or the client goes away. It runs with s.mu held, so it releases the lock
// while it blocks.
func (s *Server) waitOperation(r *http.Request, c *call) (proto.Message, *Error, func()) {
	op, e := s.findOperation(c)
	if e != nil {
		return nil, e, nil
	}
	s.mu.Unlock()
	t := time.NewTimer(maxWait)
	select {
	case <-op.done:
	case <-t.C:
	case <-r.Context().Done():
	case <-s.closed:
	}
	t.Stop()
	s.mu.Lock()
	return clone(op.pb), nil, nil
}

func (s *Server) runEffect(effect func() (*opFailure, func())) (fail *opFailure, hook func()) {
	defer func() {
		if p := recover(); p != nil {
			s.logf("gce operation panicked: %v\n%s", p, debug.Stack())
			fail, hook = &opFailure{code: "INTERNAL_ERROR", message: fmt.Sprintf("emulator bug: %v", p)}, nil
		}
	}()
	return effect()
}
