package agent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// The bring-up model of one Windows node: the agent's own step durations,
// measured from its events in the sandbox, plus what the sandbox cannot
// show at real cost: downloads at their size over the node's bandwidth, the
// feature install and the reboot. Sizes and times are the model's inputs,
// stated here; change them to model another node.
const (
	modelBandwidthMbps = 100.0             // a node's sustained download rate from the publishers
	modelFeatureWait   = 60 * time.Second  // Install-WindowsFeature Containers (and Hyper-V) before the reboot
	modelReboot        = 120 * time.Second // shutdown /r to the resume task running again on an EC2 Windows Server
	modelTLSBootstrap  = 10 * time.Second  // the kubelet's CSR signed and its kubeconfig written
	// flanneld's lease from the API server, then flannel's ensureNetwork:
	// up to 5 s for the management IP, the host interface polled every 5 s
	// (flannel-io/flannel pkg/backend/vxlan/device_windows.go).
	modelFlannelNetwork = 10 * time.Second
)

// The vSwitch's address gap is in the agent's steps: the sandbox holds the
// address back for as long as it models the gap.

// modelSizesMB are the downloads of a Windows node, by artifact, in MB
// (approximate sizes of the Kubernetes 1.36, containerd 2.2, CNI plugins
// 1.7, crictl 1.34, flannel 0.28 and flannel CNI plugin 1.9 Windows releases).
var modelSizesMB = map[string]float64{
	"kubelet": 120, "kube-proxy": 45, "kubectl": 60, "kube-log-runner": 3,
	"containerd": 45, "cni-plugins": 50, "crictl": 20, "flanneld": 45, "flannel-cni-plugin": 4,
	"pause-image": 120, // registry.k8s.io/pause for Windows: the nanoserver layers
}

func BenchmarkWindowsBringUpModel(b *testing.B) {
	var agent, downloads, total time.Duration
	for b.Loop() {
		l := newLab(b, windowsConfig(b, "2022", "flannel", "process"), nil)
		ctx := context.Background()
		agent, downloads = 0, 0
		for _, res := range l.converge(ctx) {
			started := map[string]time.Time{}
			for _, e := range res.events {
				switch e.Phase {
				case contract.PhaseStarted:
					started[e.Step] = e.Time
				case contract.PhaseDone, contract.PhaseReboot:
					agent += e.Time.Sub(started[e.Step])
					for _, c := range e.Changes {
						for name, mb := range modelSizesMB {
							if strings.HasPrefix(c, "download "+name+" ") || (name == "pause-image" && strings.HasPrefix(c, "pull the sandbox image")) {
								downloads += time.Duration(mb * 8 / modelBandwidthMbps * float64(time.Second))
							}
						}
					}
				}
			}
		}
		total = agent + downloads + modelFeatureWait + modelReboot + modelTLSBootstrap + modelFlannelNetwork
	}
	b.ReportMetric(agent.Seconds(), "agent-steps-s")
	b.ReportMetric(downloads.Seconds(), "downloads-s")
	b.ReportMetric((modelFeatureWait + modelReboot).Seconds(), "features+reboot-s")
	b.ReportMetric(modelTLSBootstrap.Seconds(), "tls-bootstrap-s")
	b.ReportMetric(modelFlannelNetwork.Seconds(), "flannel-network-s")
	b.ReportMetric(total.Seconds(), "node-ready-s")
}
