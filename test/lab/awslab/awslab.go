// Package awslab plugs the EC2+SSM emulator (test/lab/ec2) into the lab as
// a cloudemu.Emulator: it turns the emulator's running and terminated
// instances into instance events, reading each instance's identity from its
// user data (as EC2Launch and cloud-init would) and its OS from its AMI.
package awslab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds/aws"
	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
	"github.com/mixedk8s/mixedk8s/test/lab/ec2"
)

// Options configure the emulator as the lab runs it.
type Options struct {
	// Region of the emulated EC2; default "us-east-1".
	Region string
	// AccessKeyID and SecretAccessKey are the only credentials the emulator accepts. Required.
	AccessKeyID, SecretAccessKey string
	// PendingDelay and ShuttingDownDelay: how long instances stay pending
	// and shutting-down; defaults as in ec2.Options.
	PendingDelay, ShuttingDownDelay time.Duration
}

// Emulator is the EC2+SSM emulator in the lab.
type Emulator struct {
	// Server is the emulator itself: fault injection and call counts.
	Server *ec2.Server
	// CABundle is the path of the emulator CA's PEM certificate in the lab folder.
	CABundle string

	opts   Options
	images map[string]image // AMI ID -> what it boots
}

var _ cloudemu.Emulator = (*Emulator)(nil)

// image is what an AMI boots.
type image struct{ os, windowsVersion string }

// Starter returns the lab's starter for the emulator.
func Starter(opts Options) cloudemu.Starter {
	return func(cfg cloudemu.Config) (cloudemu.Emulator, error) { return Start(cfg, opts) }
}

// Start runs the emulator on 127.0.0.1 and writes its CA bundle into the lab folder.
func Start(cfg cloudemu.Config, opts Options) (*Emulator, error) {
	if opts.AccessKeyID == "" || opts.SecretAccessKey == "" {
		return nil, errors.New("start the EC2 emulator: no credentials; fix: set Options.AccessKeyID and SecretAccessKey")
	}
	e := &Emulator{opts: opts}
	sink := cfg.Events
	if sink == nil {
		sink = func(cloudemu.Event) {}
	}
	srv, err := ec2.New(ec2.Options{
		Region:            opts.Region,
		Credentials:       map[string]string{opts.AccessKeyID: opts.SecretAccessKey},
		PendingDelay:      opts.PendingDelay,
		ShuttingDownDelay: opts.ShuttingDownDelay,
		OnRunning:         func(in ec2.Instance) { sink(e.started(in)) },
		OnTerminated:      func(in ec2.Instance) { sink(cloudemu.Event{Kind: cloudemu.Terminated, Instance: e.instance(in)}) },
		OnLoadBalancer: func(lb ec2.LoadBalancer) {
			if cfg.LoadBalancers != nil {
				cfg.LoadBalancers(loadBalancer(lb))
			}
		},
		Logf: cfg.Logf,
	})
	if err != nil {
		return nil, err
	}
	e.Server = srv
	e.images = knownImages(srv)
	e.CABundle = filepath.Join(cfg.Dir, "ca.pem")
	if err := os.WriteFile(e.CABundle, srv.CACertPEM(), 0o644); err != nil {
		srv.Close()
		return nil, fmt.Errorf("start the EC2 emulator: write the CA bundle: %w", err)
	}
	return e, nil
}

// knownImages maps the emulator's public AMIs to the OS and Windows version
// they boot, from the SSM parameters that name them.
func knownImages(srv *ec2.Server) map[string]image {
	out := map[string]image{}
	for _, v := range []string{"2019", "2022", "2025"} {
		for _, edition := range []string{"Core", "Full"} {
			if id, ok := srv.ImageID("/aws/service/ami-windows-latest/Windows_Server-" + v + "-English-" + edition + "-Base"); ok {
				out[id] = image{os: "windows", windowsVersion: v}
			}
		}
	}
	for _, p := range []string{
		"/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
		"/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id",
	} {
		if id, ok := srv.ImageID(p); ok {
			out[id] = image{os: "linux"}
		}
	}
	return out
}

// instance is the neutral view of an EC2 instance.
func (e *Emulator) instance(in ec2.Instance) cloudemu.Instance {
	name := in.Tags[aws.TagNode]
	if name == "" {
		name = in.ID
	}
	im := e.images[in.ImageID]
	return cloudemu.Instance{
		Cloud: "aws", ID: in.ID, Cluster: in.Tags[aws.TagCluster], Name: name, Pool: in.Tags[aws.TagPool], Role: in.Tags[aws.TagRole],
		OS: im.os, WindowsVersion: im.windowsVersion, NestedVirtualization: in.NestedVirtualization, PrivateIP: in.PrivateIP, Tags: in.Tags,
	}
}

// loadBalancer is the neutral view of an ELB load balancer: its DNS name
// resolves to its addresses in the subnets, as an NLB's does.
func loadBalancer(lb ec2.LoadBalancer) cloudemu.LoadBalancer {
	out := cloudemu.LoadBalancer{Cloud: "aws", ID: lb.ARN, Cluster: lb.Tags[aws.TagCluster], Names: []string{lb.DNSName},
		Addresses: slices.Clone(lb.Addresses), Deleted: lb.Deleted}
	for _, l := range lb.Listeners {
		out.Listeners = append(out.Listeners, cloudemu.Listener{Port: l.Port, TargetPort: l.TargetPort, Targets: slices.Clone(l.Targets),
			Health: cloudemu.HealthCheck{Port: l.Health.Port, Interval: l.Health.Interval, Healthy: l.Health.Healthy, Unhealthy: l.Health.Unhealthy}})
	}
	return out
}

// started reads what a running instance's first boot installs.
func (e *Emulator) started(in ec2.Instance) cloudemu.Event {
	ev := cloudemu.Event{Kind: cloudemu.Started, Instance: e.instance(in)}
	if _, ok := e.images[in.ImageID]; !ok {
		ev.Err = fmt.Errorf("image %s is not one of the lab's public images; fix: leave the pool's image empty, or use an AMI from the lab's SSM parameters", in.ImageID)
		return ev
	}
	id, err := aws.IdentityFromUserData(string(in.UserData))
	if err != nil {
		ev.Err = fmt.Errorf("first boot: %w", err)
		return ev
	}
	ev.Instance.Identity = id
	ev.Instance.ComputerName, ev.Instance.ComputerNameAtReboot = aws.ComputerNameFromUserData(string(in.UserData)), true
	return ev
}

// Cloud implements cloudemu.Emulator.
func (e *Emulator) Cloud() string { return "aws" }

// Objects implements cloudemu.Emulator: the network, instances, load
// balancers, target groups, listeners and SSM parameters tagged with the cluster.
func (e *Emulator) Objects(cluster string) []string { return e.Server.Objects(cluster) }

// ObjectTags implements cloudemu.Tagger: every object Objects lists carries tags on EC2.
func (e *Emulator) ObjectTags(cluster string) map[string]map[string]string {
	return e.Server.ObjectTags(cluster)
}

// Env implements cloudemu.Emulator: the names the AWS SDKs and CLI read.
func (e *Emulator) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":      e.Server.URL(),
		"AWS_REGION":            e.Server.Region(),
		"AWS_ACCESS_KEY_ID":     e.opts.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": e.opts.SecretAccessKey,
		"AWS_CA_BUNDLE":         e.CABundle,
	}
}

// ResetCalls implements cloudemu.Emulator.
func (e *Emulator) ResetCalls() { e.Server.ResetCalls() }

// Calls implements cloudemu.Emulator.
func (e *Emulator) Calls() map[string]int { return e.Server.Calls() }

// Mutating implements cloudemu.Emulator.
func (e *Emulator) Mutating(action string) bool { return ec2.Mutating(action) }

// Close implements cloudemu.Emulator.
func (e *Emulator) Close() { e.Server.Close() }
