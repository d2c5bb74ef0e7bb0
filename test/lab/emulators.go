package lab

import (
	"fmt"

	"github.com/mixedk8s/mixedk8s/test/lab/awslab"
	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
)

// startEmulators starts the EC2 emulator and every emulator of Config.Clouds,
// all reporting their instances to onEvent.
func (l *Lab) startEmulators() error {
	ecfg := cloudemu.Config{Dir: l.cfg.Dir, Events: l.onEvent, LoadBalancers: l.onLoadBalancer, Logf: l.cfg.APILogf}
	aws, err := awslab.Start(ecfg, awslab.Options{
		Region: l.cfg.Region, AccessKeyID: l.cfg.AccessKeyID, SecretAccessKey: l.cfg.SecretAccessKey,
		PendingDelay: l.cfg.PendingDelay, ShuttingDownDelay: l.cfg.ShuttingDownDelay,
	})
	if err != nil {
		return fmt.Errorf("start lab: %w", err)
	}
	l.aws, l.EC2 = aws, aws.Server
	l.emulators = append(l.emulators, aws)
	// The standing rate faults; a test that installs its own Fault hook replaces them.
	l.EC2.Fault(l.fault)
	for _, start := range l.cfg.Clouds {
		e, err := start(ecfg)
		if err != nil {
			return fmt.Errorf("start lab: %w", err)
		}
		for _, other := range l.emulators {
			if other.Cloud() == e.Cloud() {
				e.Close()
				return fmt.Errorf("start lab: two emulators of %s; fix: pass each cloud once in Config.Clouds", e.Cloud())
			}
		}
		l.emulators = append(l.emulators, e)
	}
	return nil
}
