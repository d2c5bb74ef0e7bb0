package lab

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

// installation is what the lab reads of Calico's Installation "default"
// (operator.tigera.io/v1, tigera/operator api/v1/installation_types.go).
type installation struct {
	Spec struct {
		ServiceCIDRs  []string `json:"serviceCIDRs"`
		CalicoNetwork struct {
			BGP              string `json:"bgp"`
			WindowsDataplane string `json:"windowsDataplane"`
			IPPools          []struct {
				CIDR          string `json:"cidr"`
				BlockSize     int    `json:"blockSize"`
				Encapsulation string `json:"encapsulation"`
			} `json:"ipPools"`
		} `json:"calicoNetwork"`
		WindowsNodes struct {
			CNIBinDir    string `json:"cniBinDir"`
			CNIConfigDir string `json:"cniConfigDir"`
			VXLANAdapter string `json:"vxlanAdapter"`
		} `json:"windowsNodes"`
	} `json:"spec"`
}

// calicoNodeWindows stands in for the operator's calico-node-windows
// DaemonSet on a Windows node that has just joined: pods do not run in the
// lab (hollow kubelets), so the lab reads what the operator would render
// the DaemonSet from, in the cluster's real API server, and runs the
// sandbox's model of its HostProcess containers (sandbox.RunCalicoNodeWindows).
// No Installation, or one without windowsDataplane HNS, renders no Windows
// DaemonSet (Installation CRD, windowsDataplane: "If not specified, it is
// disabled"). What would keep the pods from working is a lab problem and
// leaves the node without Calico's network, which the agent waits for.
// Not modelled: the operator itself, Typha, Felix's policy programming, and
// FelixConfiguration (VXLAN_VNI is Felix's default 4096).
func (k *kube) calicoNodeWindows(ctx context.Context, l *Lab, n *Node, spec oslayer.ServiceSpec) {
	k.mu.Lock()
	pl := k.planes[n.Cluster]
	k.mu.Unlock()
	if pl == nil {
		return
	}
	get := func(path string, into any) (bool, error) {
		code, body, err := pl.cp.Do(ctx, http.MethodGet, path, nil)
		if err != nil || code == http.StatusNotFound {
			return false, err
		}
		if code != http.StatusOK {
			return false, fmt.Errorf("GET %s: HTTP %d: %s", path, code, body)
		}
		return true, json.Unmarshal(body, into)
	}
	var inst installation
	found, err := get("/apis/operator.tigera.io/v1/installations/default", &inst)
	if err != nil {
		l.problem("calico-node-windows on %s: %v", n.Name, err)
	}
	if !found || inst.Spec.CalicoNetwork.WindowsDataplane != "HNS" {
		return
	}
	node := n.Name
	for _, a := range spec.Args {
		if v, ok := strings.CutPrefix(a, "--hostname-override="); ok {
			node = strings.ToLower(v)
		}
	}
	fail := func(format string, args ...any) {
		l.problem("calico-node-windows on %s: "+format, append([]any{node}, args...)...)
	}
	cn := inst.Spec.CalicoNetwork
	switch {
	case len(inst.Spec.ServiceCIDRs) == 0:
		fail("Installation default has no serviceCIDRs, which Calico for Windows requires (Installation CRD, serviceCIDRs)")
		return
	case len(cn.IPPools) == 0:
		fail("Installation default has no IP pool")
		return
	}
	pool := cn.IPPools[0]
	backend := ""
	switch {
	case pool.Encapsulation == "VXLAN" && cn.BGP == "Disabled":
		backend = "vxlan"
	case pool.Encapsulation == "None":
		backend = "windows-bgp"
	default:
		// docs.tigera.io/calico/3.32/getting-started/kubernetes/windows-calico/requirements.
		fail("IP pool encapsulation %q with BGP %q: Calico for Windows needs VXLAN (not VXLANCrossSubnet or IPIP) with BGP disabled, or BGP without encapsulation", pool.Encapsulation, cmp.Or(cn.BGP, "Enabled"))
		return
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if _, err := get("/api/v1/namespaces/tigera-operator/configmaps/kubernetes-services-endpoint", &cm); err != nil {
		fail("%v", err)
		return
	}
	host, port := cm.Data["KUBERNETES_SERVICE_HOST"], cm.Data["KUBERNETES_SERVICE_PORT"]
	if host != "" && port != "" {
		if at, err := k.planeAt(net.JoinHostPort(host, port)); err != nil || at != pl {
			fail("kubernetes-services-endpoint names %s:%s, which is not cluster %s's API server", host, port, n.Cluster)
			return
		}
	}
	block, err := k.calicoBlock(n.Cluster, node, pool.CIDR, cmp.Or(pool.BlockSize, 26))
	if err != nil {
		fail("%v", err)
		return
	}
	err = n.Sandbox.RunCalicoNodeWindows(ctx, sandbox.CalicoNodeWindows{
		Node: node, APIHost: host, APIPort: port, Backend: backend, VNI: 4096,
		VXLANAdapter: inst.Spec.WindowsNodes.VXLANAdapter, Block: block,
		CNIBinDir: inst.Spec.WindowsNodes.CNIBinDir, CNIConfDir: inst.Spec.WindowsNodes.CNIConfigDir,
	})
	if err != nil {
		fail("%v", err)
	}
}

// calicoBlock is Calico IPAM's block for a node: one per node, the first
// free one of the pool in address order, kept for the node (libcalico-go
// lib/ipam EnsureBlock claims an affine block once; strict affinity keeps
// other nodes out of it).
func (k *kube) calicoBlock(cluster, node, cidr string, size int) (string, error) {
	pool, err := netip.ParsePrefix(cidr)
	if err != nil || size < pool.Bits() || size > 32 {
		return "", fmt.Errorf("IP pool %q with blockSize %d has no blocks", cidr, size)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.calicoBlocks == nil {
		k.calicoBlocks = map[string]map[string]string{}
	}
	owned := k.calicoBlocks[cluster]
	if owned == nil {
		owned = map[string]string{}
		k.calicoBlocks[cluster] = owned
	}
	if b, ok := owned[node]; ok {
		return b, nil
	}
	taken := map[string]bool{}
	for _, b := range owned {
		taken[b] = true
	}
	step := uint32(1) << (32 - size)
	base := pool.Masked().Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	for i := uint32(0); i < uint32(1)<<(size-pool.Bits()); i++ {
		v := start + i*step
		b := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), size).String()
		if !taken[b] {
			owned[node] = b
			return b, nil
		}
	}
	return "", fmt.Errorf("IP pool %s has no free /%d block for node %s", cidr, size, node)
}
