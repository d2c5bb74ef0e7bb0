package cluster

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Node is one node the spec asks for, with its deterministic name.
type Node struct {
	// Name is the Kubernetes node name and the instance name:
	// "<cluster>-cp-<i>" or "<cluster>-<pool>-<i>".
	Name string
	// ComputerName is a Windows node's computer (NetBIOS) name, ComputerName(Name).
	ComputerName string
	Pool         string
	Role         string
	Ordinal      int
	OS           OS
	// WindowsVersion and Isolation are set on Windows nodes only.
	WindowsVersion string
	Isolation      Isolation
	InstanceType   string
	DiskGB         int
	Image          string
	Labels         map[string]string
	Taints         []string
}

// controlPlaneInfix names control-plane nodes; Validate reserves it as a pool name.
const controlPlaneInfix = "cp"

// NodeName is the deterministic name of a node: "<cluster>-cp-<i>" for the
// control plane (pool clouds.ControlPlanePool) and "<cluster>-<pool>-<i>" otherwise.
func NodeName(cluster, pool string, ordinal int) string {
	if pool == clouds.ControlPlanePool {
		pool = controlPlaneInfix
	}
	return cluster + "-" + pool + "-" + strconv.Itoa(ordinal)
}

// computerNameHash is how many base32 characters of the name's hash a
// shortened computer name keeps: 20 bits, and Validate refuses the rare
// clusters whose pools still collide.
const computerNameHash = 4

// ComputerName is the Windows computer name of the node called node: the
// node name itself when it fits NetBIOS's 15 characters, otherwise a
// readable prefix, a hash of the name without its ordinal, and the ordinal
// ("payments-prod-win-1" becomes "payments-xxxx-1"). It depends only on the
// node name, so it is stable across runs and machines, and the ordinal
// keeps the nodes of one pool apart. Letters, digits and '-' only, never
// all digits: the NetBIOS and DNS rules at once
// (https://learn.microsoft.com/troubleshoot/windows-server/active-directory/naming-conventions-for-computer-domain-site-ou).
func ComputerName(node string) string {
	if len(node) <= MaxWindowsComputerName {
		return node
	}
	base, ordinal := node, ""
	if i := strings.LastIndexByte(node, '-'); i > 0 {
		base, ordinal = node[:i], node[i+1:]
	}
	sum := sha256.Sum256([]byte(base))
	hash := strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:computerNameHash]
	tail := "-" + hash
	if ordinal != "" {
		tail += "-" + ordinal
	}
	prefix := strings.TrimRight(base[:max(MaxWindowsComputerName-len(tail), 1)], "-")
	return prefix + tail
}

// Nodes lists every node the spec asks for, control plane first, then pools
// by name, each by ordinal. Call it on a spec with defaults applied.
func (s Spec) Nodes() []Node {
	var out []Node
	for i := range s.ControlPlane.Count {
		out = append(out, Node{
			Name:         NodeName(s.Name, clouds.ControlPlanePool, i),
			Pool:         clouds.ControlPlanePool,
			Role:         clouds.RoleControlPlane,
			Ordinal:      i,
			OS:           Linux,
			InstanceType: s.ControlPlane.InstanceType,
			DiskGB:       s.ControlPlane.DiskGB,
			Image:        s.ControlPlane.Image,
		})
	}
	for _, name := range slices.Sorted(maps.Keys(s.NodePools)) {
		p := s.NodePools[name]
		for i := range p.Count {
			out = append(out, workerNode(s.Name, name, p, i))
		}
	}
	return out
}

// workerNode is the node a pool's spec asks for at an ordinal.
func workerNode(cluster, pool string, p PoolSpec, ordinal int) Node {
	n := Node{
		Name:         NodeName(cluster, pool, ordinal),
		Pool:         pool,
		Role:         clouds.RoleWorker,
		Ordinal:      ordinal,
		OS:           p.OS,
		InstanceType: p.InstanceType,
		DiskGB:       p.DiskGB,
		Image:        p.Image,
		Labels:       p.Labels,
		Taints:       p.Taints,
	}
	if p.OS == Windows {
		n.WindowsVersion, n.Isolation = p.WindowsVersion, p.Isolation
		n.ComputerName = ComputerName(n.Name)
	}
	return n
}

// ordinalOf reads the ordinal back from a node name; -1 when it has none.
func ordinalOf(name string) int {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return -1
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil {
		return -1
	}
	return n
}

// describe is how a node's OS reads in a plan: "linux" or "windows-2022".
func (n Node) describe() string {
	if n.OS == Windows {
		return fmt.Sprintf("windows-%s", n.WindowsVersion)
	}
	return string(n.OS)
}
