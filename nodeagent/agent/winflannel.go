package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/kubeadm"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// Flannel on a Windows node runs as rancher/rke2 pkg/windows/flannel.go runs
// it: flanneld.exe a native service with its own kubeconfig and net-conf,
// the flannel CNI plugin from flannel-io/cni-plugin, and kube-proxy's source
// VIP reserved with host-local on the subnet of flannel's network.
const (
	winFlanneld           = winK + `\flanneld.exe`
	winFlanneldKubeconfig = winK + `\flanneld.conf`
	winFlanneldNetConf    = winK + `\flanneld-net-conf.json`
	// markerSourceVIP holds "<vip> <flannel's subnet>" once reserved.
	markerSourceVIP = "source-vip"
	// flannelNetworkWait bounds the wait for flanneld's network, as RKE2's reserveFlannelVIP does.
	flannelNetworkWait = 5 * time.Minute
	// The host-local reservation's owner, as RKE2 names it.
	sourceVIPContainerID = "kube-proxy"
	sourceVIPIfName      = "source-vip"
)

func planFlannelCNIPlugin(ctx context.Context, r *run) ([]change, error) {
	if r.cfg.Cluster.CNI != "flannel" {
		return nil, nil
	}
	// The release's flannel-amd64.exe, pinned (manifest); containerd runs the "flannel" type as flannel.exe.
	return r.ensureArtifact(manifest.FlannelCNI, "windows", r.artifactArch(), r.installFile(winCNIBin+`\flannel.exe`))
}

// flanneldNetConf is flanneld's net-conf.json: the cluster's pod network and
// the VXLAN settings flannel accepts on Windows (VNI 4096 and up, port 4789).
func flanneldNetConf(podCIDR string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"Network": podCIDR,
		"Backend": map[string]any{"Type": "vxlan", "Name": hnsNetworkName("flannel"), "VNI": vxlanVNI, "Port": vxlanPort},
	}, "", "  ")
}

// planFlanneld installs flanneld.exe and runs it as a service once the
// kubelet has joined (its credential is the kubelet's), on the real API endpoint.
func planFlanneld(ctx context.Context, r *run) ([]change, error) {
	if r.cfg.Cluster.CNI != "flannel" {
		return nil, nil
	}
	ip := r.cfg.Node.PrivateIP
	if ip == "" {
		return nil, fmt.Errorf("node.privateIP is empty: flanneld binds its VXLAN to the adapter holding it (--iface); fix: set node.privateIP to the node's VPC address")
	}
	out, err := r.ensureArtifact(manifest.Flanneld, "windows", r.artifactArch(), r.installFile(winFlanneld))
	if err != nil {
		return nil, err
	}
	// The node's own credential, not a ServiceAccount token as RKE2 mints: nothing to ship or rotate, and the Node authorizer grants kube-subnet-mgr's reads and its own node's status patch.
	kc, err := kubeadm.FlanneldKubeconfig(r.cfg, winKubeletClientCert)
	if err != nil {
		return nil, fmt.Errorf("failed to render flanneld's kubeconfig: %w", err)
	}
	nc, err := flanneldNetConf(r.cfg.Cluster.PodCIDR)
	if err != nil {
		return nil, err
	}
	files := r.ensureFile(winFlanneldKubeconfig, kc, oslayer.Secret, "flanneld's kubeconfig (the API server at "+r.cfg.Cluster.APIEndpoint+", the kubelet's client certificate)")
	files = append(files, r.ensureFile(winFlanneldNetConf, nc, oslayer.Public, "flanneld's net-conf (VXLAN, VNI 4096, UDP 4789)")...)
	p, a := logRunner("flanneld", winFlanneld,
		"--kube-subnet-mgr",
		"--kubeconfig-file="+winFlanneldKubeconfig,
		"--net-config-path="+winFlanneldNetConf,
		"--iface="+ip,
		"--public-ip="+ip,
		"--ip-masq",
		"--iptables-forward-rules=false",
	)
	svc, err := r.ensureService(ctx, oslayer.ServiceSpec{
		Name: "flanneld", DisplayName: "flannel", Description: "flannel overlay network for Kubernetes pods (mixedk8s)",
		// The kubelet registers its node under the lower-cased name (k8s.io/component-helpers node/util GetHostname).
		Path: p, Args: a, Env: []string{"NODE_NAME=" + strings.ToLower(r.cfg.Node.Name)}, LogFolder: logFolder("flanneld"),
	}, true, len(files) > 0)
	return append(append(out, files...), svc...), err
}

// flannelNetwork reports flannel's HNS network once flanneld has made it
// for this node: VXLAN VNI 4096, a subnet of the pod network, and the
// management IP HNS gives it when its vSwitch is up.
func (r *run) flannelNetwork(ctx context.Context) (*oslayer.HNSNetwork, error) {
	n, err := r.windows.HNSNetwork(ctx, hnsNetworkName("flannel"))
	if err != nil || n == nil {
		return nil, err
	}
	pods, err := netip.ParsePrefix(r.cfg.Cluster.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("cluster.podCIDR %q: %w", r.cfg.Cluster.PodCIDR, err)
	}
	sub, err := netip.ParsePrefix(n.AddressPrefix)
	if err != nil || !strings.EqualFold(n.Type, "Overlay") || n.VNI != vxlanVNI || !pods.Contains(sub.Addr()) || sub.Bits() < pods.Bits() || n.ManagementIP == "" {
		return nil, nil
	}
	return n, nil
}

// planFlannelNetwork waits for flanneld's HNS network: kube-proxy's source
// VIP lives on its subnet, which only flanneld knows (the node's podCIDR).
func planFlannelNetwork(ctx context.Context, r *run) ([]change, error) {
	if r.cfg.Cluster.CNI != "flannel" {
		return nil, nil
	}
	if n, err := r.flannelNetwork(ctx); err != nil || n != nil {
		return nil, err
	}
	name := hnsNetworkName("flannel")
	return []change{{what: fmt.Sprintf("wait for flanneld to create HNS network %s (VXLAN, VNI %d) with this node's pod subnet", name, vxlanVNI), do: func(ctx context.Context) error {
		deadline := r.now().Add(flannelNetworkWait)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			n, err := r.flannelNetwork(ctx)
			if err != nil || n != nil {
				return err
			}
			if r.now().After(deadline) {
				return fmt.Errorf("flanneld made no HNS network %s with a subnet of %s within %s; fix: read %s (the node needs a podCIDR: the control plane allocates it from networking.podSubnet)", name, r.cfg.Cluster.PodCIDR, flannelNetworkWait, logFolder("flanneld")+`\flanneld.log`)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
	}}}, nil
}

// hostLocalConf is host-local's network config for the source VIP: the
// CNI network's name and data folder, so pods' IPAM sees the reservation.
func hostLocalConf(network, subnet string) []byte {
	b, _ := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": network,
		"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": subnet}}}, "dataDir": winHostLocalDir},
	})
	return b
}

// planSourceVIP reserves kube-proxy's source VIP on flannel's subnet with
// host-local, in the store the flannel CNI plugin's IPAM uses, so no pod
// gets the address. A new subnet (flannel recreated its network) releases
// the old reservation and takes a new one.
func planSourceVIP(ctx context.Context, r *run) ([]change, error) {
	if r.cfg.Cluster.CNI != "flannel" {
		return nil, nil
	}
	network := hnsNetworkName("flannel")
	n, err := r.flannelNetwork(ctx)
	if err != nil {
		return nil, err
	}
	subnet := "<flannel's subnet>"
	if n != nil {
		subnet = n.AddressPrefix
		vip, had, _ := strings.Cut(r.state.Markers[markerSourceVIP], " ")
		if vip != "" && had == subnet && r.exists(winHostLocalDir+`\`+network+`\`+vip) {
			return nil, nil
		}
	} else if !r.dryRun {
		return nil, fmt.Errorf("HNS network %s is missing; fix: run apply again so the flannel-network step waits for it", network)
	}
	return []change{{what: "reserve kube-proxy's source VIP on " + subnet + " with host-local (" + winHostLocalDir + `\` + network + ")", do: func(ctx context.Context) error {
		hl := func(command string) ([]byte, error) {
			return r.runCmd(ctx, oslayer.Command{Path: winCNIBin + `\host-local.exe`, Stdin: hostLocalConf(network, subnet), Env: []string{
				"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + sourceVIPContainerID, "CNI_NETNS=" + sourceVIPContainerID,
				"CNI_IFNAME=" + sourceVIPIfName, "CNI_PATH=" + winCNIBin,
			}})
		}
		release := func() error {
			if _, err := hl("DEL"); err != nil {
				return fmt.Errorf("failed to release kube-proxy's old source VIP: %w", err)
			}
			return nil
		}
		// host-local refuses a second ADD for the same owner
		// (containernetworking/plugins allocator.Get: "duplicate allocation is
		// not allowed"): release an old reservation first.
		if r.state.Markers[markerSourceVIP] != "" {
			if err := release(); err != nil {
				return err
			}
		}
		out, err := hl("ADD")
		if err != nil && strings.Contains(err.Error(), "duplicate allocation") {
			if err := release(); err != nil {
				return err
			}
			out, err = hl("ADD")
		}
		if err != nil {
			return fmt.Errorf("failed to reserve kube-proxy's source VIP on %s: %w", subnet, err)
		}
		var res struct {
			IPs []struct {
				Address string `json:"address"`
			} `json:"ips"`
		}
		if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) == 0 {
			return fmt.Errorf("host-local reserved no source VIP on %s (output %q); fix: read %s", subnet, out, winHostLocalDir)
		}
		p, err := netip.ParsePrefix(res.IPs[0].Address)
		if err != nil {
			return fmt.Errorf("host-local returned address %q: %w", res.IPs[0].Address, err)
		}
		r.state.Markers[markerSourceVIP] = p.Addr().String() + " " + subnet
		return r.saveState()
	}}}, nil
}
