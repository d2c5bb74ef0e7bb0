package cluster

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Node is one node the spec asks for, with its deterministic name.
type Node struct {
	// Name is the Kubernetes node name, the instance name and, on Windows, the
	// computer name: "<cluster>-cp-<i>" or "<cluster>-<pool>-<i>".
	Name    string
	Pool    string
	Role    string
	Ordinal int
	OS      OS
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
			n := Node{
				Name:         NodeName(s.Name, name, i),
				Pool:         name,
				Role:         clouds.RoleWorker,
				Ordinal:      i,
				OS:           p.OS,
				InstanceType: p.InstanceType,
				DiskGB:       p.DiskGB,
				Image:        p.Image,
				Labels:       p.Labels,
				Taints:       p.Taints,
			}
			if p.OS == Windows {
				n.WindowsVersion, n.Isolation = p.WindowsVersion, p.Isolation
			}
			out = append(out, n)
		}
	}
	return out
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
