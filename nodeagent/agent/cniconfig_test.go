package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
)

// The settings HCN reads for each endpoint policy, by field name as in
// github.com/Microsoft/hcsshim hcn/hcnpolicy.go (a windows-only file, so
// this test names the fields itself and decodes strictly against them).
type (
	outboundNatSetting struct {
		VirtualIP        string   `json:",omitempty"`
		Exceptions       []string `json:",omitempty"`
		Destinations     []string `json:",omitempty"`
		Flags            uint32   `json:",omitempty"`
		MaxPortPoolUsage uint16   `json:",omitempty"`
	}
	sdnRouteSetting struct {
		DestinationPrefix string `json:",omitempty"`
		NextHop           string `json:",omitempty"`
		NeedEncap         bool   `json:",omitempty"`
	}
	providerAddressSetting struct {
		ProviderAddress string `json:",omitempty"`
	}
)

// decodeStrict decodes data into v, refusing fields v does not have.
func decodeStrict(t *testing.T, data []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s does not decode into %T: %v", data, v, err)
	}
}

// containerd's CNI on Windows runs flannel's plugin, which delegates to
// win-overlay; win-overlay with "apiVersion": 2 hands each EndpointPolicy to
// HCN as an hcn.EndpointPolicy {Type, Settings} (containernetworking/plugins
// pkg/hns/netconf_windows.go GetHostComputeEndpointPolicies). The v1 (HNS)
// form of the Docker era is not read by the v2 path.
func TestWindowsCNIConfigIsWinOverlayV2(t *testing.T) {
	ctx := context.Background()
	cfg := windowsConfig(t, "2022", "flannel", "process")
	l := newLab(t, cfg, nil)
	l.converge(ctx)
	data, err := l.sb.ReadFile(`C:\etc\cni\net.d\10-flannel.conflist`)
	if err != nil {
		t.Fatalf("no CNI config for containerd: %v", err)
	}
	var list struct {
		Name       string            `json:"name"`
		CNIVersion string            `json:"cniVersion"`
		Plugins    []json.RawMessage `json:"plugins"`
	}
	decodeStrict(t, data, &list)
	if list.Name != "flannel.4096" || len(list.Plugins) != 1 {
		t.Fatalf("conflist %s", data)
	}
	var flannel struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
		Delegate     struct {
			Type       string `json:"type"`
			APIVersion int    `json:"apiVersion"`
			Policies   []struct {
				Name  string          `json:"name"`
				Value json.RawMessage `json:"value"`
			} `json:"policies"`
		} `json:"delegate"`
	}
	decodeStrict(t, list.Plugins[0], &flannel)
	if flannel.Type != "flannel" || flannel.Delegate.Type != "win-overlay" || flannel.Delegate.APIVersion != 2 {
		t.Fatalf("plugin %s, want flannel delegating to win-overlay apiVersion 2", list.Plugins[0])
	}
	seen := map[string]bool{}
	for _, p := range flannel.Delegate.Policies {
		var ep struct {
			Type     string
			Settings json.RawMessage
		}
		decodeStrict(t, p.Value, &ep)
		seen[ep.Type] = true
		switch ep.Type {
		case "OutBoundNAT":
			var s outboundNatSetting
			decodeStrict(t, ep.Settings, &s)
			for _, c := range []string{cfg.Cluster.PodCIDR, cfg.Cluster.ServiceCIDR} {
				if !slices.Contains(s.Exceptions, c) {
					t.Errorf("OutBoundNAT exceptions %v lack %s", s.Exceptions, c)
				}
			}
		case "SDNRoute":
			var s sdnRouteSetting
			decodeStrict(t, ep.Settings, &s)
			if s.DestinationPrefix != cfg.Cluster.ServiceCIDR || !s.NeedEncap {
				t.Errorf("SDNRoute %+v, want the service CIDR with encapsulation", s)
			}
		case "ProviderAddress":
			var s providerAddressSetting
			decodeStrict(t, ep.Settings, &s)
			if s.ProviderAddress != cfg.Node.PrivateIP {
				t.Errorf("ProviderAddress %q, want %s", s.ProviderAddress, cfg.Node.PrivateIP)
			}
		default:
			t.Errorf("unexpected policy %s", p.Value)
		}
	}
	for _, want := range []string{"OutBoundNAT", "SDNRoute", "ProviderAddress"} {
		if !seen[want] {
			t.Errorf("no %s policy in %s", want, data)
		}
	}
}
