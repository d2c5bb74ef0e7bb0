package lab

import (
	"fmt"
	"net/url"
	"time"

	"github.com/mixedk8s/mixedk8s/test/lab/ec2"
)

// Fault kinds, the Kind of a Fault.
const (
	// FaultThrottle answers RequestLimitExceeded (SSM: ThrottlingException).
	FaultThrottle = "throttle"
	// Fault5xx answers InternalError (HTTP 500).
	Fault5xx = "5xx"
	// FaultCapacity makes RunInstances of InstanceType fail with InsufficientInstanceCapacity.
	FaultCapacity = "capacity"
	// FaultDeny makes Action fail with UnauthorizedOperation.
	FaultDeny = "deny"
	// FaultLatency delays every call of Action by Latency.
	FaultLatency = "latency"
	// FaultDropConnections drops every bastion connection (and with Node, that node's connections).
	FaultDropConnections = "drop-connections"
	// FaultRebootHost reboots Node's host: every connection to it drops.
	FaultRebootHost = "reboot-host"
	// FaultClear removes every standing emulator fault (rates, latency, capacity, denials).
	FaultClear = "clear"
)

// Fault is one fault to inject, in Go or as the JSON body of POST /faults:
//
//	{"kind":"throttle","action":"*","every":2}     every 2nd call of each action is throttled
//	{"kind":"5xx","action":"RunInstances","count":1} the next RunInstances fails with a 500
//	{"kind":"capacity","instance_type":"m6i.xlarge"} no capacity for the type ("off":true restores it)
//	{"kind":"latency","action":"*","latency":"200ms"}
//	{"kind":"drop-connections"}                       {"kind":"reboot-host","node":"demo-win-0"}
//	{"kind":"clear"}
type Fault struct {
	Kind string `json:"kind"`
	// Action is the API action, e.g. "RunInstances" or "PutParameter"; "*" or empty means every action.
	Action string `json:"action,omitempty"`
	// Count fails the next Count calls of Action ("*": the next Count calls of each action).
	Count int `json:"count,omitempty"`
	// Every fails every Every-th call of Action from now on, counted per action, until cleared.
	Every int `json:"every,omitempty"`
	// InstanceType is the type without capacity (FaultCapacity).
	InstanceType string `json:"instance_type,omitempty"`
	// Latency is a Go duration such as "150ms" (FaultLatency).
	Latency string `json:"latency,omitempty"`
	// Node is the node name for FaultRebootHost and FaultDropConnections.
	Node string `json:"node,omitempty"`
	// Off removes a capacity, deny or latency fault instead of adding it.
	Off bool `json:"off,omitempty"`
}

// rate is a standing "every n-th call" fault.
type rate struct {
	action string
	every  int
	err    ec2.Error
	seen   map[string]int
}

// Inject applies a fault. Emulator faults act per API call; host faults act
// at once.
func (l *Lab) Inject(f Fault) error {
	action := f.Action
	if action == "" {
		action = "*"
	}
	switch f.Kind {
	case FaultThrottle, Fault5xx:
		e := ec2.ErrRequestLimitExceeded
		if f.Kind == Fault5xx {
			e = ec2.ErrInternal
		}
		switch {
		case f.Every > 0 && f.Count > 0:
			return fmt.Errorf("inject %s fault: set count or every, not both", f.Kind)
		case f.Every > 0:
			l.fmu.Lock()
			l.rates = append(l.rates, &rate{action: action, every: f.Every, err: e, seen: map[string]int{}})
			l.fmu.Unlock()
		case f.Count > 0:
			l.EC2.Inject(action, f.Count, e)
		default:
			return fmt.Errorf("inject %s fault: set count (the next n calls) or every (every n-th call)", f.Kind)
		}
	case FaultCapacity:
		if f.InstanceType == "" {
			return fmt.Errorf("inject capacity fault: set instance_type, e.g. \"m6i.xlarge\"")
		}
		l.EC2.NoCapacity(f.InstanceType, !f.Off)
		if !f.Off {
			l.fmu.Lock()
			l.capacityOff = append(l.capacityOff, f.InstanceType)
			l.fmu.Unlock()
		}
	case FaultDeny:
		if action == "*" {
			return fmt.Errorf("inject deny fault: set the action to deny, e.g. \"RunInstances\"")
		}
		l.EC2.Deny(action, !f.Off)
		if !f.Off {
			l.fmu.Lock()
			l.denied = append(l.denied, action)
			l.fmu.Unlock()
		}
	case FaultLatency:
		d, err := time.ParseDuration(f.Latency)
		if err != nil && !f.Off {
			return fmt.Errorf("inject latency fault: latency %q is not a Go duration such as \"200ms\"", f.Latency)
		}
		if f.Off {
			d = 0
		}
		l.EC2.SetLatency(action, d)
	case FaultDropConnections:
		l.Bastion.DropConnections()
		if f.Node != "" {
			return l.RebootHost(f.Node)
		}
	case FaultRebootHost:
		return l.RebootHost(f.Node)
	case FaultClear:
		l.ClearFaults()
	default:
		return fmt.Errorf("unknown fault kind %q; use throttle, 5xx, capacity, deny, latency, drop-connections, reboot-host or clear", f.Kind)
	}
	return nil
}

// ClearFaults removes every standing emulator fault: rates, latencies,
// capacity errors and denials. Count faults run out on their own.
func (l *Lab) ClearFaults() {
	l.fmu.Lock()
	l.rates = nil
	types, actions := l.capacityOff, l.denied
	l.capacityOff, l.denied = nil, nil
	l.fmu.Unlock()
	l.EC2.SetLatency("*", 0)
	for _, t := range types {
		l.EC2.NoCapacity(t, false)
	}
	for _, a := range actions {
		l.EC2.Deny(a, false)
	}
}

// RebootHost drops every connection to a node's host, as a reboot does; what
// its agent wrote stays on its sandbox disk.
func (l *Lab) RebootHost(name string) error {
	n := l.Node(name)
	if n == nil {
		return fmt.Errorf("reboot host %q: no live node has that name; fix: GET /nodes lists them", name)
	}
	n.Host.Reboot()
	return nil
}

// DropConnections drops every connection through the bastion, as a bastion restart does.
func (l *Lab) DropConnections() { l.Bastion.DropConnections() }

// fault is the emulator's hook for the standing rate faults.
func (l *Lab) fault(action string, _ url.Values) *ec2.Error {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	for _, r := range l.rates {
		if r.action != "*" && r.action != action {
			continue
		}
		r.seen[action]++
		if r.seen[action]%r.every == 0 {
			e := r.err
			return &e
		}
	}
	return nil
}
