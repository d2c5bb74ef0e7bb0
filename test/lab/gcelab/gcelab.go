// Package gcelab plugs the Compute Engine and Secret Manager emulator
// (test/lab/gce) into the lab as a cloudemu.Emulator: it turns the
// emulator's running and deleted instances into instance events, with the
// identity the modelled guest made on first boot (the SSH host key it
// published as a guest attribute, the WinRM certificate whose thumbprint it
// published, the password it set through windows-keys), so the lab's
// virtual node presents exactly what the cloud reports.
package gcelab

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/gcp"
	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
	"github.com/mixedk8s/mixedk8s/test/lab/gce"
)

// Options configure the emulator as the lab runs it.
type Options struct {
	// Project and Region of the emulated project; defaults as in gce.Options.
	Project, Region string
	// Token is the only OAuth bearer token the emulator accepts. Required.
	Token string
	// OperationDelay and BootDelay: defaults as in gce.Options.
	OperationDelay, BootDelay time.Duration
}

// Emulator is the Compute Engine emulator in the lab.
type Emulator struct {
	// Server is the emulator itself: fault injection and call counts.
	Server *gce.Server
	// CABundle is the path of the emulator CA's PEM certificate in the lab folder.
	CABundle string

	opts Options
}

var _ cloudemu.Emulator = (*Emulator)(nil)

// Starter returns the lab's starter for the emulator.
func Starter(opts Options) cloudemu.Starter {
	return func(cfg cloudemu.Config) (cloudemu.Emulator, error) { return Start(cfg, opts) }
}

// Start runs the emulator on 127.0.0.1 and writes its CA bundle into the lab folder.
func Start(cfg cloudemu.Config, opts Options) (*Emulator, error) {
	if opts.Token == "" {
		return nil, fmt.Errorf("start the Compute Engine emulator: no token; fix: set Options.Token")
	}
	e := &Emulator{opts: opts}
	sink := cfg.Events
	if sink == nil {
		sink = func(cloudemu.Event) {}
	}
	srv, err := gce.New(gce.Options{
		Project: opts.Project, Region: opts.Region, Token: opts.Token,
		OperationDelay: opts.OperationDelay, BootDelay: opts.BootDelay,
		OnRunning: func(in gce.Instance) { sink(e.started(in)) },
		OnDeleted: func(in gce.Instance) { sink(cloudemu.Event{Kind: cloudemu.Terminated, Instance: instance(in)}) },
		OnStopped: func(in gce.Instance) { sink(cloudemu.Event{Kind: cloudemu.Stopped, Instance: instance(in)}) },
		OnLoadBalancer: func(lb gce.LoadBalancer) {
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
	e.CABundle = filepath.Join(cfg.Dir, "gce-ca.pem")
	if err := os.WriteFile(e.CABundle, srv.CACertPEM(), 0o644); err != nil {
		srv.Close()
		return nil, fmt.Errorf("start the Compute Engine emulator: write the CA bundle: %w", err)
	}
	return e, nil
}

// instance is the neutral view of a Compute Engine instance; its ID is
// zone/name, unique in the project, as the numeric ID is too.
func instance(in gce.Instance) cloudemu.Instance {
	name := in.Labels[gcp.LabelNode]
	if name == "" {
		name = in.Name
	}
	return cloudemu.Instance{
		Cloud: "gcp", ID: fmt.Sprint(in.ID), Cluster: in.Labels[gcp.LabelCluster], Name: name, Pool: in.Labels[gcp.LabelPool], Role: in.Labels[gcp.LabelRole],
		OS: in.OS, WindowsVersion: in.WindowsVersion, NestedVirtualization: in.NestedVirtualization, PrivateIP: in.PrivateIP, Tags: in.Labels,
	}
}

// loadBalancer is the neutral view of a passthrough forwarding rule: its
// address (no DNS name: clients dial the address), each port forwarded to
// the same port of the backend service's group members, probed by its
// health check. Compute fails open as the lab does: "When all backend VMs
// are unhealthy, the load balancer distributes new connections among all
// backends as a last resort"
// (https://cloud.google.com/load-balancing/docs/internal/int-netlb-traffic-distribution).
// The cluster is the forwarding rule's label, or its description before
// the label is set.
func loadBalancer(lb gce.LoadBalancer) cloudemu.LoadBalancer {
	cluster := lb.Labels[gcp.LabelCluster]
	if v, ok := strings.CutPrefix(lb.Description, gcp.LabelCluster+"="); ok && cluster == "" {
		cluster = v
	}
	out := cloudemu.LoadBalancer{Cloud: "gcp", ID: lb.SelfLink, Cluster: cluster, Addresses: []string{lb.Address}, Deleted: lb.Deleted}
	if lb.BackendService == "" {
		return out // nothing to forward to yet
	}
	for _, p := range lb.Ports {
		out.Listeners = append(out.Listeners, cloudemu.Listener{Port: p, TargetPort: p, Targets: slices.Clone(lb.Targets),
			Health: cloudemu.HealthCheck{Port: lb.Health.Port, Interval: lb.Health.Interval, Healthy: lb.Health.Healthy, Unhealthy: lb.Health.Unhealthy}})
	}
	return out
}

// started reads what the guest made on first boot.
func (e *Emulator) started(in gce.Instance) cloudemu.Event {
	ev := cloudemu.Event{Kind: cloudemu.Started, Instance: instance(in)}
	g, ok := e.Server.Guest(in.Zone, in.Name)
	if !ok {
		ev.Err = fmt.Errorf("first boot of %s did not run", in.Name)
		return ev
	}
	id, err := identity(g)
	if err != nil {
		ev.Err = fmt.Errorf("first boot: %w", err)
		return ev
	}
	ev.Instance.Identity = id
	ev.Instance.ComputerName = g.ComputerName
	return ev
}

// identity is the guest's own identity in the lab's terms.
func identity(g gce.GuestState) (clouds.NodeIdentity, error) {
	if g.Instance.OS == "windows" {
		if g.WinRMCert == nil {
			return clouds.NodeIdentity{}, fmt.Errorf("the image made no WinRM certificate")
		}
		if len(g.Passwords) != 1 {
			return clouds.NodeIdentity{}, fmt.Errorf("windows-keys in the metadata made %d accounts, not one; fix: create the instance with one unexpired windows-keys entry", len(g.Passwords))
		}
		der, err := x509.MarshalPKCS8PrivateKey(g.WinRMCert.PrivateKey)
		if err != nil {
			return clouds.NodeIdentity{}, err
		}
		id := clouds.NodeIdentity{
			WinRMCertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.WinRMCert.Certificate[0]})),
			WinRMKeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		}
		for user, pw := range g.Passwords {
			id.AdminUser, id.AdminPassword = user, pw
		}
		return id, nil
	}
	if g.HostKey == nil {
		return clouds.NodeIdentity{}, fmt.Errorf("the guest agent made no host key")
	}
	block, err := ssh.MarshalPrivateKey(g.HostKey, "")
	if err != nil {
		return clouds.NodeIdentity{}, err
	}
	users := make([]string, 0, len(g.AuthorizedKeys))
	for u := range g.AuthorizedKeys {
		users = append(users, u)
	}
	sort.Strings(users)
	if len(users) != 1 {
		return clouds.NodeIdentity{}, fmt.Errorf("ssh-keys in the metadata name %d users, not one; fix: create the instance with the admin user's keys only", len(users))
	}
	return clouds.NodeIdentity{AdminUser: users[0], SSHHostKeyPEM: string(pem.EncodeToMemory(block)), SSHAuthorizedKeys: g.AuthorizedKeys[users[0]]}, nil
}

// Cloud implements cloudemu.Emulator.
func (e *Emulator) Cloud() string { return "gcp" }

// ObjectTags implements cloudemu.Tagger: the labels of instances, disks and secrets.
func (e *Emulator) ObjectTags(cluster string) map[string]map[string]string {
	return e.Server.ObjectLabels(cluster)
}

// Objects implements cloudemu.Emulator: instances, disks and secrets
// labelled with the cluster, and its networks, subnetworks, firewalls and
// load-balancing objects by name.
func (e *Emulator) Objects(cluster string) []string { return e.Server.Objects(cluster) }

// Env implements cloudemu.Emulator: what the provider's gcp block and
// clouds/gcp need to reach the emulator instead of Google.
func (e *Emulator) Env() map[string]string {
	return map[string]string{
		"GOOGLE_CLOUD_PROJECT":      e.Server.Project(),
		"MIXEDK8S_GCP_REGION":       e.Server.Region(),
		"MIXEDK8S_GCP_ENDPOINT":     e.Server.URL(),
		"MIXEDK8S_GCP_CA_BUNDLE":    e.CABundle,
		"MIXEDK8S_GCP_ACCESS_TOKEN": e.opts.Token,
	}
}

// ResetCalls implements cloudemu.Emulator.
func (e *Emulator) ResetCalls() { e.Server.ResetCalls() }

// Calls implements cloudemu.Emulator.
func (e *Emulator) Calls() map[string]int { return e.Server.Calls() }

// Mutating implements cloudemu.Emulator.
func (e *Emulator) Mutating(action string) bool { return gce.Mutating(action) }

// Close implements cloudemu.Emulator.
func (e *Emulator) Close() { e.Server.Close() }
