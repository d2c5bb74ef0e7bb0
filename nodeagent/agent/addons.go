package agent

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"net"
	"text/template"

	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

//go:embed addons/*.yaml
var addonFiles embed.FS

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
		"WindowsCNIBin": winCNIBin, "WindowsCNIConf": winCNIConf, "WindowsCNILog": winCalicoCNILog,
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

// crdEstablishedWait bounds the wait for the API server to serve new CRDs.
const crdEstablishedWait = "120s"

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
		// Server-side, as Calico's upgrade guide applies the same two files
		// (docs.tigera.io/calico/3.32/operations/upgrading/kubernetes-upgrade):
		// the CRDs are too large for client-side apply's annotation.
		ms, err := manifest.CalicoManifests()
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			file := dir + "/" + m.Name
			args := []string{"--kubeconfig", linuxAdminConf, "apply", "--server-side", "--force-conflicts", "-f", file}
			out = append(out, r.marker("addon/"+m.Name, m.SHA256, "write Calico "+manifest.CalicoVersion+"'s "+m.Name+" (sha256 "+m.SHA256[:12]+"…, "+m.URL+") and kubectl apply it (server-side)", func(ctx context.Context) error {
				if err := r.files.WriteFile(file, m.Data, oslayer.Public); err != nil {
					return err
				}
				if err := r.command(ctx, "/usr/bin/kubectl", args...); err != nil || !m.CRDs {
					return err
				}
				// The operator and the custom resources below need the CRDs served.
				return r.command(ctx, "/usr/bin/kubectl", "--kubeconfig", linuxAdminConf, "wait", "--for=condition=Established", "--timeout="+crdEstablishedWait, "-f", file)
			})...)
		}
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
