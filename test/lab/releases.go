package lab

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/proc"
	"github.com/mixedk8s/mixedk8s/test/lab/host"
)

// releaseBinDir is the folder of the lab's binaries of one Kubernetes
// release ("v1.36.3"): hack/k8s-bins.sh links each release's under
// bin/k8s-<release>. A cluster or node of a release the lab has not built
// is refused, never run on another release's binaries.
func releaseBinDir(release string, names ...string) (string, error) {
	root, err := proc.BinDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "k8s-"+release)
	if err := proc.CheckBins(dir, names...); err != nil {
		return "", fmt.Errorf("the lab runs Kubernetes %s from %s: %w; the lab builds the releases of test/lab/k8s (`make lab-bins`) and test/lab/k8s/prev (`make lab-bins-prev`)", release, dir, err)
	}
	return dir, nil
}

// installedRelease is the release of a Kubernetes binary the agent
// installed on the node ("kubelet", "kubeadm"): the lab's mirror serves
// stand-ins that name their artifact and version
// (nodeagent/sandbox/mirror: "stand-in kubelet 1.36.3 for linux/amd64").
func installedRelease(n *Node, name string) (string, error) {
	file := "/usr/bin/" + name
	if n.Host.OS == host.Windows {
		file = `C:\k\` + name + ".exe"
	}
	data, err := readNodeFile(n, file)
	if err != nil {
		return "", fmt.Errorf("%s on %s: %w (the agent installs it before it is run)", file, n.Name, err)
	}
	f := strings.Fields(string(data))
	if len(f) < 3 || f[0] != "stand-in" || f[1] != name {
		return "", fmt.Errorf("%s on %s is not a %s the lab's mirror served", file, n.Name, name)
	}
	return "v" + strings.TrimPrefix(f[2], "v"), nil
}
