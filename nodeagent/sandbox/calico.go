package sandbox

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// CalicoNodeWindows is what the operator's calico-node-windows DaemonSet
// gives its HostProcess containers on one node; tigera/operator renders it
// from the Installation and the kubernetes-services-endpoint ConfigMap.
// Pods do not run in the lab, so the lab hands this to RunCalicoNodeWindows
// when the DaemonSet would start on a joined Windows node.
type CalicoNodeWindows struct {
	// Node is the Kubernetes node name.
	Node string
	// APIHost and APIPort are KUBERNETES_SERVICE_HOST and _PORT from the
	// kubernetes-services-endpoint ConfigMap.
	APIHost, APIPort string
	// Backend is CALICO_NETWORKING_BACKEND: "vxlan" for a VXLAN pool with BGP off.
	Backend string
	// VNI is VXLAN_VNI (Felix's VXLANVNI).
	VNI int
	// VXLANAdapter is Installation.windowsNodes.vxlanAdapter; empty: the primary NIC.
	VXLANAdapter string
	// Block is the IPAM block Calico's EnsureBlock gave the node.
	Block string
	// CNIBinDir and CNIConfDir are Installation.windowsNodes.cniBinDir and cniConfigDir.
	CNIBinDir, CNIConfDir string
}

// calicoContainerdConfig is where the agent writes containerd's config on Windows.
const calicoContainerdConfig = `C:\Program Files\containerd\config.toml`

var (
	tomlBinDirs = regexp.MustCompile(`(?m)^\s*bin_dirs\s*=\s*\[\s*"([^"]*)"`)
	tomlConfDir = regexp.MustCompile(`(?m)^\s*conf_dir\s*=\s*"([^"]*)"`)
)

// RunCalicoNodeWindows is calico-node-windows starting on the node
// (projectcalico/calico v3.32.1):
//   - install-cni needs the API server's address for the kubeconfig it
//     writes (node/windows-packaging: the HostProcess install reads
//     KUBERNETES_SERVICE_HOST/PORT; without the ConfigMap the operator
//     falls back to the kubernetes Service, which kube-proxy on this node
//     has not programmed yet) and writes calico.exe, calico-ipam.exe and
//     10-calico.conflist into the Installation's CNI folders, which must be
//     containerd's (Installation CRD, windowsNodes.cniBinDir/cniConfigDir);
//   - only the vxlan backend is modelled: windows-bgp needs the RemoteAccess
//     role, which the agent does not install;
//   - node/windows-packaging/CalicoWindows/node/node-service.ps1, on its
//     first run since boot, deletes every non-NAT HNS network (the vSwitch
//     goes with the last one), creates External (Overlay,
//     192.168.255.0/30, gateway .1, VSID 9999) on the VXLAN adapter, waits
//     for the management IP, and restores only EC2's and GCE's metadata
//     route (Set-MetaDataServerRoute; the sandbox restores none, so the
//     agent must);
//   - calico-node -startup (node/pkg/lifecycle/startup/startup_windows.go
//     ensureNetworkForOS, cni-plugin/pkg/dataplane/windows SetupVxlanNetwork)
//     creates the "Calico" Overlay network on the node's block with
//     VXLAN_VNI, gateway .1, and the host endpoint Calico_ep at .2
//     (createAndAttachVxlanHostEP, getNthIP 2).
func (s *Sandbox) RunCalicoNodeWindows(ctx context.Context, c CalicoNodeWindows) error {
	if err := s.windowsOnly(); err != nil {
		return err
	}
	fail := func(container, why string) error {
		return fmt.Errorf("calico-node-windows on %s: container %s: %s", c.Node, container, why)
	}
	if c.APIHost == "" || c.APIPort == "" {
		return fail("install-cni", "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (no kubernetes-services-endpoint ConfigMap in tigera-operator): the kubernetes Service is not reachable from a Windows host before kube-proxy runs")
	}
	conf, err := s.ReadFile(calicoContainerdConfig)
	if err != nil {
		return fail("install-cni", "containerd's config "+calicoContainerdConfig+" is missing")
	}
	bin, confDir := tomlBinDirs.FindSubmatch(conf), tomlConfDir.FindSubmatch(conf)
	unescape := func(b []byte) string { return strings.ReplaceAll(string(b), `\\`, `\`) }
	if bin == nil || confDir == nil || !strings.EqualFold(unescape(bin[1]), c.CNIBinDir) || !strings.EqualFold(unescape(confDir[1]), c.CNIConfDir) {
		return fail("install-cni", fmt.Sprintf("Installation windowsNodes cniBinDir %q and cniConfigDir %q are not containerd's cni bin_dirs and conf_dir in %s: containerd would never load Calico's config", c.CNIBinDir, c.CNIConfDir, calicoContainerdConfig))
	}
	if c.Backend != "vxlan" {
		return fail("node", fmt.Sprintf("CALICO_NETWORKING_BACKEND %q: only vxlan (a VXLAN pool with BGP off) is modelled; windows-bgp needs the RemoteAccess role", c.Backend))
	}
	block, err := netip.ParsePrefix(c.Block)
	if err != nil || block.Bits() > 29 {
		return fail("node", fmt.Sprintf("IPAM block %q is not a usable IPv4 block", c.Block))
	}
	m := s.Machine()
	adapter := c.VXLANAdapter
	if adapter == "" {
		adapter = primaryAdapter(m)
	}
	// First run since boot: every non-NAT network goes, then External.
	if m.CalicoBoot != m.Reboots+1 {
		for _, name := range sortedNetworks(m) {
			if strings.EqualFold(m.HNSNetworks[name].Type, "nat") {
				continue
			}
			if err := s.record(KindHNSNetworkDelete, name, "calico-node-windows: first run since boot", func() error {
				delete(s.m.HNSNetworks, name)
				delete(s.m.HNSEndpoints, name+"_ep")
				if len(s.m.HNSNetworks) == 0 {
					s.detachVSwitch()
				}
				return nil
			}); err != nil {
				return err
			}
		}
		ext := hnsOverlay("External", "192.168.255.0/30", "192.168.255.1", 9999, adapter)
		if err := s.record(KindHNSNetwork, ext.Name, "type=Overlay prefix=192.168.255.0/30 gateway=192.168.255.1 vsid=9999 by calico-node-windows", func() error {
			if err := s.attachVSwitch(strings.TrimSuffix(strings.TrimPrefix(adapter, "vEthernet ("), ")")); err != nil {
				return err
			}
			s.m.HNSNetworks[ext.Name] = ext
			s.m.CalicoBoot = s.m.Reboots + 1
			return nil
		}); err != nil {
			return err
		}
	}
	mgmt := ""
	for _, a := range s.Machine().Adapters {
		if strings.HasPrefix(a.Name, "vEthernet (") {
			mgmt = a.IP
		}
	}
	gw := block.Masked().Addr().Next()
	ep := gw.Next()
	calico := hnsOverlay("Calico", block.Masked().String(), gw.String(), c.VNI, adapter)
	calico.ManagementIP = mgmt
	if cur, ok := s.Machine().HNSNetworks["Calico"]; !ok || cur.AddressPrefix != calico.AddressPrefix || cur.VNI != calico.VNI {
		if err := s.record(KindHNSNetwork, "Calico", fmt.Sprintf("type=Overlay prefix=%s gateway=%s vni=%d udp=4789 host endpoint Calico_ep=%s by calico-node-windows", calico.AddressPrefix, gw, c.VNI, ep), func() error {
			s.m.HNSNetworks["Calico"] = calico
			if s.m.HNSEndpoints == nil {
				s.m.HNSEndpoints = map[string]string{}
			}
			s.m.HNSEndpoints["Calico_ep"] = ep.String()
			return nil
		}); err != nil {
			return err
		}
	}
	for file, data := range map[string]string{
		c.CNIBinDir + `\calico.exe`:          "calico CNI plugin (stand-in)",
		c.CNIBinDir + `\calico-ipam.exe`:     "calico IPAM plugin (stand-in)",
		c.CNIConfDir + `\10-calico.conflist`: `{"name":"Calico","cniVersion":"0.3.1","plugins":[{"type":"calico","mode":"vxlan"}]}`,
	} {
		hp, err := s.HostPath(file)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(hp, []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func hnsOverlay(name, prefix, gateway string, vni int, adapter string) oslayer.HNSNetwork {
	return oslayer.HNSNetwork{Name: name, Type: "Overlay", AddressPrefix: prefix, Gateway: gateway, VNI: vni, UDPPort: 4789, AdapterName: adapter}
}

// primaryAdapter is the physical adapter (or the vSwitch that holds it).
func primaryAdapter(m Machine) string {
	names := make([]string, 0, len(m.Adapters))
	for n := range m.Adapters {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "Ethernet"
	}
	sort.Strings(names)
	return strings.TrimSuffix(strings.TrimPrefix(names[0], "vEthernet ("), ")")
}

func sortedNetworks(m Machine) []string {
	names := make([]string, 0, len(m.HNSNetworks))
	for n := range m.HNSNetworks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// detachVSwitch is the last HNS network going: the vSwitch is removed and
// the address moves back to the physical adapter, with the default route
// only (the first vSwitch dropped the others). Callers hold s.mu.
func (s *Sandbox) detachVSwitch() {
	for name, a := range s.m.Adapters {
		if phys, ok := strings.CutPrefix(name, "vEthernet ("); ok {
			phys = strings.TrimSuffix(phys, ")")
			delete(s.m.Adapters, name)
			s.m.Adapters[phys] = &oslayer.NetAdapter{Name: phys, IP: a.IP, Routes: []string{"0.0.0.0/0"}}
		}
	}
}
