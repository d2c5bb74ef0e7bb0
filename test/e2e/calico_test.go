package e2e_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// checkCalico reads a Calico cluster back: the real API server serves
// Calico's CRDs (Established) and holds the Installation the init node's
// agent applied (accepted by that CRD's schema), with VXLAN, BGP off, the
// spec's pod and service CIDRs and the Windows dataplane; strict affinity
// is on; a NetworkPolicy is accepted. Each Windows node has Calico's HNS
// network on its own block of the pod network (the lab's stand-in for
// calico-node-windows) and kube-proxy runs on it. Pods do not run in the
// lab, so nothing here shows traffic flowing or a policy enforced.
func (w *world) checkCalico(spec cluster.Spec, res *cluster.Result) {
	t := w.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := w.kube(spec)
	if got, err := w.session(spec).prov.CNI(ctx, spec, nil); err != nil || got != cluster.CNICalico {
		t.Errorf("the provisioner reads pod network %q (%v), want calico", got, err)
	}
	get := func(path string, into any) bool {
		t.Helper()
		body, err := cs.Discovery().RESTClient().Get().AbsPath(path).DoRaw(ctx)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			return false
		}
		if err := json.Unmarshal(body, into); err != nil {
			t.Errorf("GET %s: %v", path, err)
			return false
		}
		return true
	}
	for _, crd := range []string{"installations.operator.tigera.io", "apiservers.operator.tigera.io", "ipamconfigs.crd.projectcalico.org", "ippools.crd.projectcalico.org", "felixconfigurations.crd.projectcalico.org"} {
		var obj struct {
			Status struct {
				Conditions []struct{ Type, Status string } `json:"conditions"`
			} `json:"status"`
		}
		if !get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"+crd, &obj) {
			continue
		}
		established := false
		for _, c := range obj.Status.Conditions {
			established = established || (c.Type == "Established" && c.Status == "True")
		}
		if !established {
			t.Errorf("CRD %s is not Established: %+v", crd, obj.Status.Conditions)
		}
	}
	var inst struct {
		Spec struct {
			ServiceCIDRs  []string `json:"serviceCIDRs"`
			CalicoNetwork struct {
				BGP, WindowsDataplane string
				IPPools               []struct{ CIDR, Encapsulation string }
			} `json:"calicoNetwork"`
		} `json:"spec"`
	}
	if get("/apis/operator.tigera.io/v1/installations/default", &inst) {
		cn := inst.Spec.CalicoNetwork
		if cn.BGP != "Disabled" || cn.WindowsDataplane != "HNS" || len(cn.IPPools) != 1 || cn.IPPools[0].CIDR != spec.WithDefaults().Network.PodCIDR || cn.IPPools[0].Encapsulation != "VXLAN" ||
			strings.Join(inst.Spec.ServiceCIDRs, ",") != spec.WithDefaults().Network.ServiceCIDR {
			t.Errorf("Installation default: %+v", inst.Spec)
		}
	}
	var ipam struct {
		Spec struct {
			StrictAffinity bool `json:"strictAffinity"`
		} `json:"spec"`
	}
	if get("/apis/crd.projectcalico.org/v1/ipamconfigs/default", &ipam) && !ipam.Spec.StrictAffinity {
		t.Errorf("IPAMConfig default has strictAffinity off")
	}
	var endpoint struct{ Data map[string]string }
	if get("/api/v1/namespaces/tigera-operator/configmaps/kubernetes-services-endpoint", &endpoint) && (endpoint.Data["KUBERNETES_SERVICE_HOST"] == "" || endpoint.Data["KUBERNETES_SERVICE_PORT"] != "6443") {
		t.Errorf("kubernetes-services-endpoint: %v", endpoint.Data)
	}
	policy := networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-ingress"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/os": "windows"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	if _, err := cs.NetworkingV1().NetworkPolicies("default").Create(ctx, &policy, metav1.CreateOptions{}); err != nil {
		t.Errorf("NetworkPolicy not accepted: %v", err)
	}
	pods := netip.MustParsePrefix(spec.WithDefaults().Network.PodCIDR)
	blocks := map[string]string{}
	for _, ni := range res.Nodes {
		if ni.OS != cluster.Windows {
			continue
		}
		m := w.lab.Node(ni.Name).Sandbox.Machine()
		n, ok := m.HNSNetworks["Calico"]
		block, err := netip.ParsePrefix(n.AddressPrefix)
		switch {
		case !ok:
			t.Errorf("%s: HNS networks %v, want Calico", ni.Name, keys(m.HNSNetworks))
			continue
		case err != nil || !pods.Contains(block.Addr()) || block.Bits() != 24 || n.VNI != 4096:
			t.Errorf("%s: Calico network %+v is not a /24 block of %s with VNI 4096", ni.Name, n, pods)
		case blocks[n.AddressPrefix] != "":
			t.Errorf("%s and %s share Calico block %s", ni.Name, blocks[n.AddressPrefix], n.AddressPrefix)
		}
		blocks[n.AddressPrefix] = ni.Name
		if _, ok := m.HNSNetworks["External"]; !ok {
			t.Errorf("%s: no External network", ni.Name)
		}
		if _, ok := m.HNSNetworks["flannel.4096"]; ok {
			t.Errorf("%s: a flannel network on a Calico cluster", ni.Name)
		}
		if s := m.Services["kube-proxy"]; s == nil || !s.Running {
			t.Errorf("%s: kube-proxy is not running", ni.Name)
		}
		if s := m.Services["flanneld"]; s != nil {
			t.Errorf("%s: flanneld installed on a Calico cluster", ni.Name)
		}
	}
	t.Logf("FIGURE %s: Calico blocks of the Windows nodes (HNS network Calico): %v", w.row.name, blocks)
}
