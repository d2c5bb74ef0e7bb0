// Package cloudemu is the seam between the lab and a cloud API emulator
// (the EC2 one, an ARM one, a Compute Engine one): an emulator reports each
// instance that starts, stops, reboots or terminates, with the identity its
// first boot installs, and the lab runs a virtual node for it; it reports
// each load balancer with its addresses and targets, and the lab forwards
// the addresses to the healthy targets. The lab
// knows no cloud's types; each emulator's adapter speaks this package.
package cloudemu

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Kind is what happened to an instance.
type Kind string

const (
	// Started: the instance runs; the lab boots a node from its identity.
	Started Kind = "started"
	// Stopped: the instance was stopped; the lab stops its node and keeps its disk.
	Stopped Kind = "stopped"
	// Rebooted: the instance was rebooted through the cloud API; its connections drop.
	Rebooted Kind = "rebooted"
	// Terminated: the instance is gone; the lab removes its node and disk.
	Terminated Kind = "terminated"
)

// Instance is what the lab needs to know of an emulated instance.
type Instance struct {
	// Cloud is the emulator's cloud name ("aws", "azure", "gcp").
	Cloud string
	// ID is the cloud's instance ID. Incarnation tells this instance from an
	// earlier one under the same ID, where the cloud reuses IDs (an Azure VM
	// made again with its name); empty elsewhere.
	ID, Incarnation string
	// Cluster, Name, Pool and Role are read from the instance's tags as the
	// cloud spells them; Name is the ID when the instance has no node tag.
	Cluster, Name, Pool, Role string
	// OS is "linux" or "windows", from the image the instance booted.
	OS string
	// WindowsVersion is "2019", "2022" or "2025" on Windows.
	WindowsVersion string
	// NestedVirtualization says whether the instance can run Hyper-V.
	NestedVirtualization bool
	// PrivateIP is the address in the cluster's network the bastion resolves.
	PrivateIP string
	// Identity is what the instance's first boot installs. Secret.
	Identity clouds.NodeIdentity
	// ComputerName is the Windows computer name the first boot sets, as the
	// cloud's boot data asks; empty keeps the image's. ComputerNameAtReboot:
	// the rename takes effect at the next reboot only (EC2Launch's script
	// runs Rename-Computer without restarting), not before the first login.
	ComputerName         string
	ComputerNameAtReboot bool
	// Tags are the instance's tags, as the cloud spells them.
	Tags map[string]string
}

// Event is one change of an instance.
type Event struct {
	Kind     Kind
	Instance Instance
	// Err, on Started, says why the instance cannot become a node (no
	// identity in its first-boot data, an image the lab does not know): it
	// stays unreachable, as a real one whose first boot failed.
	Err error
}

func (e Event) String() string {
	return fmt.Sprintf("%s instance %s (%s) %s", e.Instance.Cloud, e.Instance.ID, e.Instance.Name, e.Kind)
}

// Clone copies the event's maps, so a receiver may keep it.
func (e Event) Clone() Event {
	e.Instance.Tags = maps.Clone(e.Instance.Tags)
	return e
}

// Sink receives events. Emulators call it without holding their locks, in
// the order the changes happened for each instance.
type Sink func(Event)

// Emulator is one cloud's API emulator running in the lab.
type Emulator interface {
	// Cloud is the cloud's name, as its clouds.Profile names it.
	Cloud() string
	// Objects lists the cluster's objects in the emulator, found by the
	// cloud's cluster tag, as "kind/id": what a leak check compares with nothing.
	Objects(cluster string) []string
	// Env is what a client in another process needs to reach the emulator,
	// as environment variables (written into the lab's lab.env).
	Env() map[string]string
	// ResetCalls zeroes the emulator's API call counts.
	ResetCalls()
	// Calls counts the API calls by action since the last ResetCalls.
	Calls() map[string]int
	// Mutating reports whether an action changes the emulated cloud.
	Mutating(action string) bool
	// Close stops the emulator's server; no event follows.
	Close()
}

// Tagger is an Emulator that reports the tags (or labels) of a cluster's
// objects: each object Objects lists that can carry tags, by its
// "kind/id", with its tags as the cloud spells them. An object the cloud
// gives no tags (a GCE network, an Azure VM's OS disk) is absent.
type Tagger interface {
	ObjectTags(cluster string) map[string]map[string]string
}

// LoadBalancer is what the lab needs of an emulated load balancer to carry
// its traffic: the addresses clients dial and, per listener, the instances
// behind it and how the cloud checks their health.
type LoadBalancer struct {
	// Cloud is the emulator's cloud name.
	Cloud string
	// ID is the cloud's identifier of the load balancer.
	ID string
	// Cluster is read from the load balancer's cluster tag.
	Cluster string
	// Names are the DNS names that resolve to Addresses (none when clients dial an address).
	Names []string
	// Addresses are its IPv4 addresses in the cluster's network.
	Addresses []string
	// Listeners are its ports and what each forwards to.
	Listeners []Listener
	// Deleted is set on the last report of a deleted load balancer.
	Deleted bool
}

// Listener is one port of a load balancer.
type Listener struct {
	Port int
	// TargetPort is the port of the targets it forwards to.
	TargetPort int
	// Targets are the instance IDs registered behind it.
	Targets []string
	// Health is the cloud's health check of the targets.
	Health HealthCheck
}

// HealthCheck is how a cloud probes a target: a TCP connection to Port
// every Interval; Healthy passes in a row put a target in rotation,
// Unhealthy failures in a row take it out.
type HealthCheck struct {
	Port               int
	Interval           time.Duration
	Healthy, Unhealthy int
	// FailClosed: while no target is healthy, new connections go nowhere
	// (Azure Load Balancer's default); otherwise every target takes them
	// (ELB fails open).
	FailClosed bool
}

// Clone copies the load balancer's slices, so a receiver may keep it.
func (lb LoadBalancer) Clone() LoadBalancer {
	lb.Names, lb.Addresses = slices.Clone(lb.Names), slices.Clone(lb.Addresses)
	lb.Listeners = slices.Clone(lb.Listeners)
	for i := range lb.Listeners {
		lb.Listeners[i].Targets = slices.Clone(lb.Listeners[i].Targets)
	}
	return lb
}

// LoadBalancerSink receives load balancers as they become ready, change
// listeners or targets, and are deleted. Emulators call it without holding
// their locks; the latest report of an ID is its whole state.
type LoadBalancerSink func(LoadBalancer)

// Config is what the lab gives an emulator it starts.
type Config struct {
	// Dir is the lab folder; an emulator writes its CA bundle there.
	Dir string
	// Events receives the emulator's instance events.
	Events Sink
	// LoadBalancers, when set, receives the emulator's load balancers.
	LoadBalancers LoadBalancerSink
	// Logf, when set, receives one line per emulated API request.
	Logf func(format string, args ...any)
}

// Starter starts one emulator for the lab.
type Starter func(Config) (Emulator, error)
