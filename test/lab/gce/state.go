package gce

import (
	"crypto/ed25519"
	"crypto/tls"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"cloud.google.com/go/compute/apiv1/computepb"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/protobuf/proto"
)

// Instance is an emulated instance as hooks and the inspection API see it.
type Instance struct {
	ID   uint64
	Name string
	Zone string
	// Status is PROVISIONING, STAGING, RUNNING, STOPPING or TERMINATED.
	Status      string
	MachineType string
	// Image is the image the boot disk was made from (a family resolves to it).
	Image string
	// OS is "linux" or "windows"; WindowsVersion "2019", "2022" or "2025".
	OS, WindowsVersion  string
	PrivateIP, PublicIP string
	Labels              map[string]string
	Tags                []string
	// Metadata is the instance metadata: whatever is here, every process
	// on the VM can read (https://cloud.google.com/compute/docs/metadata/overview).
	Metadata             map[string]string
	NestedVirtualization bool
	DiskGB               int64
	// DiskKMSKey is the Cloud KMS key version that encrypts the boot disk,
	// empty for Google-managed encryption.
	DiskKMSKey string
}

// GuestState is what the modelled guest made on first boot: the identity
// a virtual host for the instance must present, and the accounts it has.
type GuestState struct {
	Instance Instance
	// HostKey is the Linux SSH host key the guest agent generated.
	HostKey ed25519.PrivateKey
	// WinRMCert is the Windows WinRM HTTPS listener certificate.
	WinRMCert *tls.Certificate
	// ComputerName is the Windows computer (NetBIOS) name specialize set.
	ComputerName string
	// Passwords are the Windows accounts the windows-keys flow set. Secret.
	Passwords map[string]string
	// AuthorizedKeys are the Linux accounts from the ssh-keys metadata.
	AuthorizedKeys map[string][]string
}

type instance struct {
	pb       *computepb.Instance
	zone     string
	image    image
	booted   bool
	guest    *GuestState
	attrs    map[string]string // guest attributes "namespace/key" -> value
	serial   [5]strings.Builder
	gaWindow []int64 // unix nanos of recent getGuestAttributes calls
}

type disk struct {
	name, zone string
	autoDelete bool
	sizeGB     int64
	labels     map[string]string
	kmsKey     string // the Cloud KMS key it was created with, or ""
}

type operation struct {
	pb   *computepb.Operation
	done chan struct{}
}

type secret struct {
	pb       *secretmanagerpb.Secret
	versions []*secretmanagerpb.SecretPayload
}

type state struct {
	nextID      uint64
	networks    map[string]*computepb.Network
	subnetworks map[string]*computepb.Subnetwork
	firewalls   map[string]*computepb.Firewall
	instances   map[string]*instance // zone/name
	disks       map[string]*disk     // zone/name
	reserved    map[string]bool      // kind/name of inserts whose operation is pending
	ops         map[string]*operation
	requests    map[string]string // requestId -> operation name
	secrets     map[string]*secret
	nextIP      map[string]netip.Addr // subnetwork -> next address
	nextPublic  netip.Addr

	// Load balancing (lb.go), regional objects by name, groups by zone/name.
	addresses       map[string]*computepb.Address
	forwardingRules map[string]*computepb.ForwardingRule
	backendServices map[string]*computepb.BackendService
	healthChecks    map[string]*computepb.HealthCheck
	groups          map[string]*group

	iam iamState // service accounts, their token creators and tokens (iam.go)
	// sharedVPC: Shared VPC host project -> its attached service projects (sharedvpc.go).
	sharedVPC map[string]map[string]bool
}

func newState() *state {
	st := &state{
		nextID:   4_611_686_018_427_387_904, // above 2^53: an ID that survives only as a JSON string
		networks: map[string]*computepb.Network{}, subnetworks: map[string]*computepb.Subnetwork{}, firewalls: map[string]*computepb.Firewall{},
		instances: map[string]*instance{}, disks: map[string]*disk{}, reserved: map[string]bool{},
		ops: map[string]*operation{}, requests: map[string]string{}, secrets: map[string]*secret{}, nextIP: map[string]netip.Addr{},
		nextPublic: netip.MustParseAddr("203.0.113.10"),
		iam:        newIAMState(),
		sharedVPC:  map[string]map[string]bool{},
	}
	st.lbInit()
	return st
}

func (st *state) id() uint64 {
	st.nextID += 7919
	return st.nextID
}

func (in *instance) snapshot() Instance {
	out := Instance{
		ID: in.pb.GetId(), Name: in.pb.GetName(), Zone: in.zone, Status: in.pb.GetStatus(),
		MachineType: lastSegment(in.pb.GetMachineType()), Image: in.image.name, OS: in.image.os, WindowsVersion: in.image.windowsVersion,
		Labels: maps.Clone(in.pb.GetLabels()), Tags: slices.Clone(in.pb.GetTags().GetItems()), Metadata: map[string]string{},
		NestedVirtualization: in.pb.GetAdvancedMachineFeatures().GetEnableNestedVirtualization(),
	}
	for _, it := range in.pb.GetMetadata().GetItems() {
		out.Metadata[it.GetKey()] = it.GetValue()
	}
	for _, ni := range in.pb.GetNetworkInterfaces() {
		out.PrivateIP = ni.GetNetworkIP()
		for _, ac := range ni.GetAccessConfigs() {
			out.PublicIP = ac.GetNatIP()
		}
	}
	for _, d := range in.pb.GetDisks() {
		out.DiskGB = d.GetDiskSizeGb()
		out.DiskKMSKey = d.GetDiskEncryptionKey().GetKmsKeyName()
	}
	return out
}

func lastSegment(s string) string { return s[strings.LastIndex(s, "/")+1:] }

func clone[T proto.Message](m T) T { return proto.Clone(m).(T) }
