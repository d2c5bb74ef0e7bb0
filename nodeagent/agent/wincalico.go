package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// Calico on a Windows node is the operator's calico-node-windows DaemonSet
// (HostProcess containers), which the init node's Installation asks for
// (addons/calico.yaml, windowsDataplane HNS); the agent installs no Calico
// service. What the DaemonSet does on the node (projectcalico/calico v3.32.1):
//   - node/windows-packaging/CalicoWindows/node/node-service.ps1, on its
//     first run since boot, deletes every HNS network but NAT ones, then
//     creates the External network (Overlay, 192.168.255.0/30, VSID 9999,
//     the VXLAN adapter) and waits for the management IP, restoring only the
//     EC2 and GCE metadata route;
//   - calico-node -startup (node/pkg/lifecycle/startup/startup_windows.go
//     ensureNetworkForOS) takes an IPAM block for the node and creates the
//     "Calico" Overlay network on it with VXLAN_VNI, then the host endpoint
//     Calico_ep at the block's third address (cni-plugin/pkg/dataplane/
//     windows/dataplane_windows.go createAndAttachVxlanHostEP, getNthIP 2),
//     which Calico IPAM reserves for the host (HostReservedAttr: three at
//     the start of the block, one at the end);
//   - install-cni writes calico.exe and its CNI config into
//     Installation.windowsNodes.cniBinDir and cniConfigDir (containerd's).
//
// kube-proxy stays the agent's service: it needs the "Calico" network and
// Calico_ep's address as its source VIP, as the kube-proxy that Calico's
// docs point to reads them (kubernetes-sigs/sig-windows-tools
// hostprocess/calico/kube-proxy/start.ps1).
const (
	calicoNetworkName = "Calico"
	// calicoNetworkWait bounds the wait for calico-node-windows: the
	// operator schedules it once the node joined, and the node pulls
	// calico/node-windows and calico/cni-windows first.
	calicoNetworkWait = 10 * time.Minute
	// winCalicoCNILog is the Calico CNI plugin's log folder (Installation.windowsNodes.cniLogDir).
	winCalicoCNILog = winLogs + `\calico\cni`
)

// calicoNetwork reports Calico's HNS network once calico-node-windows has
// made it for this node: Overlay, VNI 4096, a block of the pod network, and
// the management IP HNS gives it when its vSwitch is up.
func (r *run) calicoNetwork(ctx context.Context) (*oslayer.HNSNetwork, error) {
	n, err := r.windows.HNSNetwork(ctx, calicoNetworkName)
	if err != nil || n == nil {
		return nil, err
	}
	pods, err := netip.ParsePrefix(r.cfg.Cluster.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("cluster.podCIDR %q: %w", r.cfg.Cluster.PodCIDR, err)
	}
	block, err := netip.ParsePrefix(n.AddressPrefix)
	if err != nil || !strings.EqualFold(n.Type, "Overlay") || n.VNI != vxlanVNI || !pods.Contains(block.Addr()) || block.Bits() < pods.Bits() || n.ManagementIP == "" {
		return nil, nil
	}
	return n, nil
}

// calicoSourceVIP is Calico_ep's address: the block's third address.
func calicoSourceVIP(block string) (string, error) {
	p, err := netip.ParsePrefix(block)
	if err != nil {
		return "", err
	}
	a := p.Masked().Addr().Next().Next()
	if !p.Contains(a) {
		return "", fmt.Errorf("block %s is too small for Calico's host endpoint", block)
	}
	return a.String(), nil
}

// planCalicoNetwork waits for calico-node-windows's network, records
// kube-proxy's source VIP on it, and restores the metadata routes that
// Calico's re-creation of the External network drops (it restores only
// EC2's and GCE's).
func planCalicoNetwork(ctx context.Context, r *run) ([]change, error) {
	if r.cfg.Cluster.CNI != "calico" {
		return nil, nil
	}
	n, err := r.calicoNetwork(ctx)
	if err != nil {
		return nil, err
	}
	if n != nil {
		vip, err := calicoSourceVIP(n.AddressPrefix)
		if err != nil {
			return nil, err
		}
		missing, err := r.metadataRoutesMissing(ctx)
		if err != nil {
			return nil, err
		}
		if r.state.Markers[markerSourceVIP] == vip+" "+n.AddressPrefix && !missing {
			return nil, nil
		}
	}
	what := fmt.Sprintf("wait for calico-node-windows to create HNS network %s (VXLAN, VNI %d) on a block of %s, record its host endpoint as kube-proxy's source VIP, restore the metadata routes", calicoNetworkName, vxlanVNI, r.cfg.Cluster.PodCIDR)
	return []change{{what: what, do: func(ctx context.Context) error {
		deadline := r.now().Add(calicoNetworkWait)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			n, err := r.calicoNetwork(ctx)
			if err != nil {
				return err
			}
			if n != nil {
				vip, err := calicoSourceVIP(n.AddressPrefix)
				if err != nil {
					return err
				}
				r.state.Markers[markerSourceVIP] = vip + " " + n.AddressPrefix
				if err := r.saveState(); err != nil {
					return err
				}
				return r.restoreMetadataRoutes(ctx)
			}
			if r.now().After(deadline) {
				return fmt.Errorf("calico-node-windows made no HNS network %s on a block of %s within %s; fix: check that the operator runs it on this node (kubectl -n calico-system get pods -l k8s-app=calico-node-windows -o wide, and its install-cni and node logs) and that Installation default has windowsDataplane HNS", calicoNetworkName, r.cfg.Cluster.PodCIDR, calicoNetworkWait)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
	}}}, nil
}
