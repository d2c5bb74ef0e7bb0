package agent

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"net"
	"path"
	"text/template"

	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

//go:embed addons/*.yaml
var addonFiles embed.FS

// tigeraOperator is the manifest artifact holding the Tigera operator for Calico.
const tigeraOperator = manifest.TigeraOperator

// Images of the Linux CNI add-on; Windows nodes run flanneld as a service (winflannel.go).
var addonImages = struct{ Flannel, FlannelCNI string }{
	Flannel:    "ghcr.io/flannel-io/flannel:v0.27.4",
	FlannelCNI: "ghcr.io/flannel-io/flannel-cni-plugin:v1.8.0-flannel1",
}

// renderAddon fills one embedded manifest template.
func (r *run) renderAddon(name string) ([]byte, error) {
	host, port, _ := net.SplitHostPort(r.cfg.Cluster.APIEndpoint)
	data := map[string]any{
		"PodCIDR": r.cfg.Cluster.PodCIDR, "ServiceCIDR": r.cfg.Cluster.ServiceCIDR,
		"VNI": vxlanVNI, "Port": vxlanPort, "WindowsNetwork": hnsNetworkName(r.cfg.Cluster.CNI),
		"APIHost": host, "APIPort": port,
		"FlannelImage": addonImages.Flannel, "FlannelCNIImage": addonImages.FlannelCNI,
	}
	t, err := template.ParseFS(addonFiles, "addons/"+name)
	if err != nil {
		return nil, fmt.Errorf("failed to parse add-on template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("failed to render add-on %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// planAddons applies the CNI for both OSes and the Windows RBAC with kubectl.
// The RuntimeClasses for Windows builds and isolations are the
// provisioner's: it applies them through the API server (cluster/provision).
func planAddons(ctx context.Context, r *run) ([]change, error) {
	dir := linuxKubeadmDir + "/addons"
	var out []change
	apply := func(name string, data []byte, serverSide bool) {
		file := dir + "/" + name
		args := []string{"--kubeconfig", linuxAdminConf, "apply", "-f", file}
		if serverSide {
			args = append(args, "--server-side", "--force-conflicts")
		}
		out = append(out, r.marker("addon/"+name, fingerprint(data), "write "+file+" and kubectl apply it", func(ctx context.Context) error {
			if err := r.files.WriteFile(file, data, oslayer.Public); err != nil {
				return err
			}
			return r.command(ctx, "/usr/bin/kubectl", args...)
		})...)
	}
	if r.cfg.Cluster.CNI == "calico" {
		m, err := manifest.For(r.cfg)
		if err != nil {
			return nil, err
		}
		a, err := manifest.Find(m, tigeraOperator, "linux", "")
		if err != nil {
			return nil, err
		}
		file := dir + "/tigera-operator.yaml"
		out = append(out, r.marker("addon/tigera-operator.yaml", a.Version+"/"+path.Base(a.URL)+"@"+a.SHA256, "download the Tigera operator from "+a.URL+", verify it and kubectl apply it (server-side)", func(ctx context.Context) error {
			if _, err := manifest.Download(ctx, r.fetcher, r.files, a, file); err != nil {
				return err
			}
			return r.command(ctx, "/usr/bin/kubectl", "--kubeconfig", linuxAdminConf, "apply", "--server-side", "--force-conflicts", "-f", file)
		})...)
	}
	cni, err := r.renderAddon(r.cfg.Cluster.CNI + ".yaml")
	if err != nil {
		return nil, err
	}
	apply(r.cfg.Cluster.CNI+".yaml", cni, false)
	win, err := r.renderAddon("windows.yaml")
	if err != nil {
		return nil, err
	}
	apply("windows.yaml", win, false)
	return out, nil
}
