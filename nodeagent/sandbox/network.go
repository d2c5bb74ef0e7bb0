package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// The rules below model Windows networking for flannel and kube-proxy as
// the real programs behave; each cites the code it follows.

// programIn reports whether a service runs a program's .exe, directly or
// through kube-log-runner.
func programIn(spec oslayer.ServiceSpec, exe string) bool {
	for _, a := range append([]string{spec.Path}, spec.Args...) {
		if strings.EqualFold(filepath.Base(strings.ReplaceAll(a, `\`, "/")), exe) {
			return true
		}
	}
	return false
}

// flagValues reads --name=value flags (one or two dashes).
func flagValues(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		out[k] = v
	}
	return out
}

func envValue(env []string, key string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v
		}
	}
	return ""
}

// emulateNetworkService runs what flanneld does when it starts, and checks
// what kube-proxy needs before it proxies anything. Windows only.
func (s *Sandbox) emulateNetworkService(ctx context.Context, spec oslayer.ServiceSpec) error {
	if s.m.Identity.GOOS != "windows" {
		return nil
	}
	switch {
	case programIn(spec, "flanneld.exe"):
		return s.emulateFlanneld(ctx, spec)
	case programIn(spec, "kube-proxy.exe"):
		return s.checkKubeProxy(spec)
	}
	return nil
}

// flannelNetConf is flannel's net-conf.json (flannel-io/flannel pkg/subnet/config.go).
type flannelNetConf struct {
	Network string
	Backend struct {
		Type string
		Name string
		VNI  int
		Port int
	}
}

// emulateFlanneld is flanneld --kube-subnet-mgr starting on Windows:
//   - it reads its kubeconfig (--kubeconfig-file) and exits without one
//     (flannel-io/flannel pkg/subnet/kube/kube.go NewSubnetManager:
//     clientcmd.BuildConfigFromFlags), finds its node by NODE_NAME (same
//     function: without it, POD_NAME and POD_NAMESPACE "must be set"), and
//     reads --net-config-path;
//   - the VXLAN backend needs VNI >= 4096 and port 4789 on Windows
//     (pkg/backend/vxlan/vxlan_windows.go RegisterNetwork);
//   - --iface must be an address of an adapter (pkg/ip/iface_windows.go);
//   - its network is never the first on the adapter: creating the first
//     moves the node's address onto a new vSwitch and drops flanneld's
//     connection to the API server mid-lease, so microsoft/SDN
//     Kubernetes/windows/start.ps1 and rancher/rke2 pkg/windows create the
//     External network before flanneld starts;
//   - the node's lease is its spec.podCIDR (pkg/subnet/kube/kube.go: "node
//     %q pod cidr not assigned" otherwise);
//   - ensureNetwork (pkg/backend/vxlan/device_windows.go) keeps a
//     same-named Overlay network only when its prefix is the lease; any
//     other is deleted and created again with the lease, gateway .1, and
//     the management IP flannel waits for;
//   - it writes C:\run\flannel\subnet.env, which the flannel CNI plugin reads
//     (flannel-io/cni-plugin flannel.go defaultSubnetFile).
func (s *Sandbox) emulateFlanneld(ctx context.Context, spec oslayer.ServiceSpec) error {
	exit := func(why string) error { return serviceExited(spec.Name, "flanneld: "+why) }
	f := flagValues(spec.Args)
	if _, ok := f["kube-subnet-mgr"]; !ok {
		return exit("no --kube-subnet-mgr: flanneld would look for etcd, which a kubeadm cluster does not offer it")
	}
	kubeconfig := f["kubeconfig-file"]
	if kubeconfig == "" {
		return exit("no --kubeconfig-file: outside a pod the in-cluster config does not exist")
	}
	if err := s.checkKubeconfig(kubeconfig); err != nil {
		return exit("fail to create kubernetes config: " + err.Error())
	}
	node := envValue(spec.Env, "NODE_NAME")
	if node == "" {
		return exit("env variables POD_NAME and POD_NAMESPACE must be set (or NODE_NAME outside a pod)")
	}
	data, err := s.ReadFile(f["net-config-path"])
	if err != nil {
		return exit("failed to read net conf " + f["net-config-path"] + ": " + err.Error())
	}
	var nc flannelNetConf
	if err := json.Unmarshal(data, &nc); err != nil {
		return exit("error parsing subnet config: " + err.Error())
	}
	network, err := netip.ParsePrefix(nc.Network)
	if err != nil || !network.Addr().Is4() {
		return exit(fmt.Sprintf("net conf Network %q is not an IPv4 prefix", nc.Network))
	}
	if !strings.EqualFold(nc.Backend.Type, "vxlan") {
		return exit(fmt.Sprintf("backend %q: only vxlan is modelled on Windows", nc.Backend.Type))
	}
	vni := cmpOr(nc.Backend.VNI, 4096)
	if vni < 4096 {
		return exit(fmt.Sprintf("invalid VXLAN backend config. VNI [%d] must be greater than or equal to 4096 on Windows", vni))
	}
	if nc.Backend.Port != 0 && nc.Backend.Port != 4789 {
		return exit(fmt.Sprintf("invalid VXLAN backend config. Port [%d] is not supported on Windows", nc.Backend.Port))
	}
	name := cmpOr(nc.Backend.Name, fmt.Sprintf("flannel.%d", vni))

	m := s.Machine()
	iface := f["iface"]
	adapter := ""
	for _, a := range m.Adapters {
		if iface != "" && a.IP == iface {
			adapter = a.Name
		}
	}
	if adapter == "" || s.now().Before(m.VSwitchGapUntil) {
		return exit(fmt.Sprintf("failed to find the interface of --iface=%q", iface))
	}
	if _, ok := m.HNSNetworks["External"]; !ok {
		return exit("no External network holds the vSwitch: creating " + name + " first would move " + iface + " onto a new vSwitch and drop the API server connection the lease needs")
	}
	subnet, err := s.podSubnet(ctx, node, network)
	if err != nil {
		return exit(err.Error())
	}
	if !network.Contains(subnet.Addr()) {
		return exit(fmt.Sprintf("node %q pod CIDR %s is outside Network %s", node, subnet, network))
	}
	gw := subnet.Addr().Next()
	if cur, ok := m.HNSNetworks[name]; !ok || cur.Type != "Overlay" || cur.AddressPrefix != subnet.String() {
		if ok {
			if err := s.record(KindHNSNetworkDelete, name, "stale prefix "+cur.AddressPrefix, func() error {
				delete(s.m.HNSNetworks, name)
				return nil
			}); err != nil {
				return err
			}
		}
		spec := oslayer.HNSNetwork{Name: name, Type: "Overlay", AddressPrefix: subnet.String(), Gateway: gw.String(), VNI: vni, UDPPort: 4789, AdapterName: adapter, ManagementIP: iface}
		if err := s.record(KindHNSNetwork, name, fmt.Sprintf("type=Overlay prefix=%s gateway=%s vni=%d udp=4789 by flanneld", spec.AddressPrefix, spec.Gateway, vni), func() error {
			if err := s.attachVSwitch(adapter); err != nil {
				return err
			}
			s.m.HNSNetworks[name] = spec
			return nil
		}); err != nil {
			return err
		}
	}
	env := fmt.Sprintf("FLANNEL_NETWORK=%s\r\nFLANNEL_SUBNET=%s/%d\r\nFLANNEL_MTU=1450\r\nFLANNEL_IPMASQ=true\r\n", network, gw, subnet.Bits())
	hp, err := s.HostPath(`C:\run\flannel\subnet.env`)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		return err
	}
	return os.WriteFile(hp, []byte(env), 0o644)
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// checkKubeconfig is what clientcmd needs of a kubeconfig: it exists, names
// a server, and the client certificate files it names exist.
func (s *Sandbox) checkKubeconfig(path string) error {
	data, err := s.ReadFile(path)
	if err != nil {
		return fmt.Errorf("stat %s: The system cannot find the file specified", path)
	}
	var kc struct {
		Clusters []struct {
			Cluster struct {
				Server string `json:"server"`
			} `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			User struct {
				Cert string `json:"client-certificate"`
				Key  string `json:"client-key"`
			} `json:"user"`
		} `json:"users"`
	}
	if err := yaml.Unmarshal(data, &kc); err != nil || len(kc.Clusters) == 0 || kc.Clusters[0].Cluster.Server == "" {
		return fmt.Errorf("invalid configuration: %s names no cluster server", path)
	}
	for _, u := range kc.Users {
		for _, f := range []string{u.User.Cert, u.User.Key} {
			if f == "" {
				continue
			}
			if _, err := s.Stat(f); err != nil {
				return fmt.Errorf("unable to read client-cert %s: The system cannot find the file specified", f)
			}
		}
	}
	return nil
}

// podSubnet is the node's spec.podCIDR: the hook's, or the first /24 of
// the cluster's pod network, as kube-controller-manager's range allocator
// gives the first node (--node-cidr-mask-size 24 for IPv4, kubernetes/kubernetes
// pkg/controller/nodeipam/ipam/range_allocator.go).
func (s *Sandbox) podSubnet(ctx context.Context, node string, network netip.Prefix) (netip.Prefix, error) {
	s.mu.Lock()
	hook := s.hooks.PodSubnet
	s.mu.Unlock()
	if hook == nil {
		if network.Bits() > 24 {
			return netip.Prefix{}, fmt.Errorf("node %q pod cidr not assigned: Network %s is smaller than a /24", node, network)
		}
		return netip.PrefixFrom(network.Masked().Addr(), 24), nil
	}
	cidr, err := hook(ctx, node)
	if err != nil {
		return netip.Prefix{}, err
	}
	if cidr == "" {
		return netip.Prefix{}, fmt.Errorf("node %q pod cidr not assigned", node)
	}
	return netip.ParsePrefix(cidr)
}

// hostLocalDir is host-local's default data directory on Windows
// (containernetworking/plugins plugins/ipam/host-local/backend/disk/backend.go
// defaultDataDir "/var/lib/cni/networks", on the system drive), where the
// flannel CNI plugin's delegated IPAM keeps the pods' addresses
// (flannel-io/cni-plugin flannel_windows.go: ipam host-local on the node's subnet).
const hostLocalDir = `C:\var\lib\cni\networks`

// hostLocal is the host-local IPAM plugin: one file per reserved address
// holding "<container id>\r\n<ifname>" under <dataDir>\<network name>; ADD
// takes the first free address after the gateway and refuses a second
// allocation for the same id and interface; DEL releases by id
// (backend/disk/backend.go Reserve and ReleaseByID, backend/allocator/allocator.go Get).
func (s *Sandbox) hostLocal(c oslayer.Command) ([]byte, error) {
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		IPAM       struct {
			Type    string `json:"type"`
			DataDir string `json:"dataDir"`
			Ranges  [][]struct {
				Subnet string `json:"subnet"`
			} `json:"ranges"`
		} `json:"ipam"`
	}
	fail := func(msg string) ([]byte, error) {
		out, _ := json.Marshal(map[string]any{"code": 100, "msg": msg})
		return out, &oslayer.RunError{Command: c.String(), ExitCode: 1, Output: string(out), Err: errors.New("host-local: " + msg)}
	}
	if err := json.Unmarshal(c.Stdin, &conf); err != nil || conf.Name == "" {
		return fail(fmt.Sprintf("failed to load netconf: %v", err))
	}
	if len(conf.IPAM.Ranges) != 1 || len(conf.IPAM.Ranges[0]) != 1 {
		return fail("the sandbox models one range with one subnet")
	}
	subnet, err := netip.ParsePrefix(conf.IPAM.Ranges[0][0].Subnet)
	if err != nil {
		return fail("invalid CIDR " + conf.IPAM.Ranges[0][0].Subnet)
	}
	id, ifname := envValue(c.Env, "CNI_CONTAINERID"), envValue(c.Env, "CNI_IFNAME")
	if id == "" || ifname == "" {
		return fail("required env variables [CNI_CONTAINERID CNI_IFNAME] missing")
	}
	dir := cmpOr(conf.IPAM.DataDir, hostLocalDir) + `\` + conf.Name
	hdir, err := s.HostPath(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(hdir, 0o755); err != nil {
		return nil, err
	}
	key := id + "\r\n" + ifname
	owned := func() (addrs []netip.Addr) {
		entries, _ := os.ReadDir(hdir)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(hdir, e.Name()))
			if a, perr := netip.ParseAddr(e.Name()); err == nil && perr == nil && strings.TrimSpace(string(b)) == key {
				addrs = append(addrs, a)
			}
		}
		return addrs
	}
	switch cmd := envValue(c.Env, "CNI_COMMAND"); cmd {
	case "DEL":
		for _, a := range owned() {
			if err := os.Remove(filepath.Join(hdir, a.String())); err != nil {
				return nil, err
			}
		}
		return nil, nil
	case "ADD":
		for _, a := range owned() {
			if subnet.Contains(a) {
				return fail(fmt.Sprintf("%s has been allocated to %s, duplicate allocation is not allowed", a, id))
			}
		}
		gw := subnet.Addr().Next()
		for a := gw.Next(); subnet.Contains(a) && a.Next().IsValid() && subnet.Contains(a.Next()); a = a.Next() {
			p := filepath.Join(hdir, a.String())
			if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err := os.WriteFile(p, []byte(key), 0o600); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(hdir, "last_reserved_ip.0"), []byte(a.String()), 0o600); err != nil {
				return nil, err
			}
			return json.Marshal(map[string]any{
				"cniVersion": conf.CNIVersion,
				"ips":        []map[string]string{{"address": netip.PrefixFrom(a, subnet.Bits()).String(), "gateway": gw.String()}},
				"dns":        map[string]any{},
			})
		}
		return fail("no IP addresses available in range set: " + subnet.String())
	default:
		return fail(fmt.Sprintf("unknown CNI_COMMAND %q", cmd))
	}
}

// hostLocalOwner returns the "<id>\r\n<ifname>" that reserved ip in a
// host-local network, or "" when none did.
func (s *Sandbox) hostLocalOwner(network, ip string) string {
	b, err := s.ReadFile(hostLocalDir + `\` + network + `\` + ip)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// checkKubeProxy is what kube-proxy in kernelspace mode needs on Windows
// before it proxies anything (kubernetes/kubernetes pkg/proxy/winkernel/proxier.go NewProxier):
//   - the HNS network its config names (winkernel.networkName) exists:
//     getNetworkInfo loops "Unable to find HNS Network specified" until it does;
//   - on an Overlay network, winkernel.sourceVip is set ("source-vip flag
//     not set" otherwise) and lies in the network's subnet, where
//     syncProxyRules creates its HNS endpoint (newSourceVIP);
//   - the address is reserved in the network's host-local store, or the
//     flannel CNI plugin's host-local IPAM hands it to a pod as well; on
//     Calico's network it is the host endpoint <network>_ep, whose address
//     Calico IPAM reserves for the host (sig-windows-tools
//     hostprocess/calico/kube-proxy/start.ps1 passes Calico_ep's address).
func (s *Sandbox) checkKubeProxy(spec oslayer.ServiceSpec) error {
	fail := func(why string) error { return serviceExited(spec.Name, "kube-proxy: "+why) }
	file := flagValues(spec.Args)["config"]
	data, err := s.ReadFile(file)
	if err != nil {
		return fail("failed to read --config " + file + ": " + err.Error())
	}
	var pc struct {
		Mode      string `json:"mode"`
		Winkernel struct {
			NetworkName string `json:"networkName"`
			SourceVip   string `json:"sourceVip"`
		} `json:"winkernel"`
	}
	if err := yaml.Unmarshal(data, &pc); err != nil {
		return fail(file + " does not parse: " + err.Error())
	}
	name := cmpOr(pc.Winkernel.NetworkName, envValue(spec.Env, "KUBE_NETWORK"))
	n, ok := s.Machine().HNSNetworks[name]
	if !ok {
		return fail(fmt.Sprintf("Unable to find HNS Network specified, please check network name and CNI deployment (hnsNetworkName=%q); kube-proxy waits for it and proxies nothing", name))
	}
	if !strings.EqualFold(n.Type, "Overlay") {
		return nil
	}
	vip := pc.Winkernel.SourceVip
	if vip == "" {
		return fail("source-vip flag not set")
	}
	ip, err := netip.ParseAddr(vip)
	prefix, perr := netip.ParsePrefix(n.AddressPrefix)
	if err != nil || perr != nil || !prefix.Contains(ip) {
		return fail(fmt.Sprintf("source VIP %s is outside network %s's subnet %s: HNS refuses its endpoint", vip, name, n.AddressPrefix))
	}
	if ep, ok := s.Machine().HNSEndpoints[name+"_ep"]; ok {
		if vip != ep {
			return fail(fmt.Sprintf("source VIP %s is not %s's host endpoint %s_ep (%s): Calico IPAM may give it to a pod", vip, name, name, ep))
		}
		return nil
	}
	if s.hostLocalOwner(name, vip) == "" {
		return fail(fmt.Sprintf("source VIP %s is not reserved in %s\\%s: host-local would give it to a pod too", vip, hostLocalDir, name))
	}
	return nil
}
