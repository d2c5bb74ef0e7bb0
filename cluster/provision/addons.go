package provision

import (
	"context"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	nodev1ac "k8s.io/client-go/applyconfigurations/node/v1"

	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// The containerd runtimes the agent configures on Windows nodes.
const (
	handlerProcess = "runhcs-wcow-process"
	handlerHyperV  = "runhcs-wcow-hypervisor"
)

// Addons implements cluster.Provisioner. The first control-plane node's
// agent applies the CNI for both OSes and the Windows RBAC when it creates
// the cluster; the provisioner applies a RuntimeClass for every supported
// Windows build and isolation, whatever the pools, so a pool added later
// finds its class already there.
func (p *Provisioner) Addons(ctx context.Context, spec cluster.Spec, j cluster.JoinInfo) error {
	k, err := p.kube(ctx, spec, nil)
	if err != nil {
		return err
	}
	for _, rc := range runtimeClasses() {
		// Force: the fields may belong to kubectl, from agents that applied them.
		if _, err := k.cs.NodeV1().RuntimeClasses().Apply(ctx, rc, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return k.fail("apply RuntimeClass "+*rc.Name, err)
		}
	}
	return nil
}

// runtimeClasses are windows-<version> (process isolation) and
// windows-<version>-hyperv (Hyper-V isolation) per Windows Server version.
// Each selects Windows nodes of its build, Hyper-V ones also by the
// isolation label the agent sets, and tolerates the os=windows taint the
// agent puts on Windows nodes, so a pod needs only its runtimeClassName.
func runtimeClasses() []*nodev1ac.RuntimeClassApplyConfiguration {
	var out []*nodev1ac.RuntimeClassApplyConfiguration
	for _, version := range slices.Sorted(maps.Keys(contract.WindowsBuilds)) {
		for _, isolation := range []string{"process", "hyperv"} {
			name, handler := "windows-"+version, handlerProcess
			selector := map[string]string{
				corev1.LabelOSStable:     "windows",
				corev1.LabelWindowsBuild: contract.WindowsBuilds[version],
			}
			if isolation == "hyperv" {
				name, handler = name+"-hyperv", handlerHyperV
				selector[contract.LabelIsolation] = "hyperv"
			}
			out = append(out, nodev1ac.RuntimeClass(name).
				WithLabels(map[string]string{contract.LabelIsolation: isolation}).
				WithHandler(handler).
				WithScheduling(nodev1ac.Scheduling().
					WithNodeSelector(selector).
					WithTolerations(corev1ac.Toleration().
						WithKey("os").
						WithOperator(corev1.TolerationOpEqual).
						WithValue("windows").
						WithEffect(corev1.TaintEffectNoSchedule))))
		}
	}
	return out
}
