// Package azurelab plugs the ARM emulator (test/lab/arm) into the lab as a
// cloudemu.Emulator: a VM whose creation succeeded becomes an instance
// event with the identity its first boot installs, read back from what
// clouds/azure sent (osProfile, customData and, on Windows, the Custom
// Script Extension's protected command), exactly as a real VM would get it;
// a provisioned load balancer becomes a cloudemu load balancer the lab
// forwards.
package azurelab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds/azure"
	"github.com/mixedk8s/mixedk8s/test/lab/arm"
	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
)

// Options configure the emulator as the lab runs it.
type Options struct {
	// ClientID and ClientSecret are the only service principal the emulator accepts. Required.
	ClientID, ClientSecret string
	// OperationDelay is how long ARM operations stay in progress; default as in arm.Options.
	OperationDelay time.Duration
}

// Emulator is the ARM emulator in the lab.
type Emulator struct {
	// Server is the emulator itself: fault injection and call counts.
	Server *arm.Server
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
	if opts.ClientID == "" || opts.ClientSecret == "" {
		return nil, errors.New("start the ARM emulator: no service principal; fix: set Options.ClientID and ClientSecret")
	}
	e := &Emulator{opts: opts}
	sink := cfg.Events
	if sink == nil {
		sink = func(cloudemu.Event) {}
	}
	srv, err := arm.New(arm.Options{
		Clients:        map[string]string{opts.ClientID: opts.ClientSecret},
		OperationDelay: opts.OperationDelay,
		OnRunning: func(vm arm.VM) {
			// A Windows VM is up for the lab once its WinRM extension ran, as on Azure.
			if vm.OS == "windows" && vm.Boot.ProtectedCommand == "" {
				return
			}
			sink(e.started(vm))
		},
		OnDeleted: func(vm arm.VM) { sink(cloudemu.Event{Kind: cloudemu.Terminated, Instance: instance(vm)}) },
		OnLoadBalancer: func(lb arm.LoadBalancer) {
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
	e.CABundle = filepath.Join(cfg.Dir, "azure-ca.pem")
	if err := os.WriteFile(e.CABundle, srv.CACertPEM(), 0o644); err != nil {
		srv.Close()
		return nil, fmt.Errorf("start the ARM emulator: write the CA bundle: %w", err)
	}
	return e, nil
}

// windowsVersions maps the lab's Windows images to their version.
var windowsVersions = map[string]string{
	"MicrosoftWindowsServer:WindowsServer:2019-datacenter-core-smalldisk-g2": "2019",
	"MicrosoftWindowsServer:WindowsServer:2022-datacenter-core-smalldisk-g2": "2022",
	"MicrosoftWindowsServer:WindowsServer:2025-datacenter-core-smalldisk-g2": "2025",
}

// instance is the neutral view of an Azure VM.
func instance(vm arm.VM) cloudemu.Instance {
	name := vm.Tags[azure.TagNode]
	if name == "" {
		name = vm.ID
	}
	return cloudemu.Instance{
		Cloud: "azure", ID: vm.ID, Incarnation: vm.VMID, Cluster: vm.Tags[azure.TagCluster], Name: name, Pool: vm.Tags[azure.TagPool], Role: vm.Tags[azure.TagRole],
		OS: vm.OS, WindowsVersion: windowsVersions[vm.Image], NestedVirtualization: azure.Profile.Nested(vm.Size),
		PrivateIP: vm.PrivateIP, Tags: vm.Tags,
	}
}

// loadBalancer is the neutral view of an Azure load balancer: clients
// dial its frontends' addresses (no DNS name), each TCP rule is a
// listener, and the probe decides health; with every probe down Azure
// sends new flows nowhere
// (https://learn.microsoft.com/azure/load-balancer/load-balancer-custom-probe-overview, "Probe down behavior").
func loadBalancer(lb arm.LoadBalancer) cloudemu.LoadBalancer {
	out := cloudemu.LoadBalancer{Cloud: "azure", ID: lb.ID, Cluster: lb.Tags[azure.TagCluster], Deleted: lb.Deleted}
	for _, r := range lb.Rules {
		if r.Address != "" && !slices.Contains(out.Addresses, r.Address) {
			out.Addresses = append(out.Addresses, r.Address)
		}
		if !strings.EqualFold(r.Protocol, "Tcp") {
			continue
		}
		h := cloudemu.HealthCheck{Port: r.Probe.Port, Interval: r.Probe.Interval, Healthy: r.Probe.Threshold, Unhealthy: r.Probe.Threshold, FailClosed: true}
		if r.Probe.Port == 0 {
			// A rule without a probe sends to every backend.
			h = cloudemu.HealthCheck{Port: r.BackendPort, Interval: 5 * time.Second, Healthy: 1, Unhealthy: 1 << 30}
		}
		out.Listeners = append(out.Listeners, cloudemu.Listener{Port: r.Port, TargetPort: r.BackendPort, Targets: slices.Clone(r.Targets), Health: h})
	}
	return out
}

// started reads what a VM's first boot installs.
func (e *Emulator) started(vm arm.VM) cloudemu.Event {
	ev := cloudemu.Event{Kind: cloudemu.Started, Instance: instance(vm)}
	if vm.OS == "windows" && ev.Instance.WindowsVersion == "" || vm.OS == "linux" && !strings.HasPrefix(vm.Image, "Canonical:") {
		ev.Err = fmt.Errorf("image %s is not one of the lab's images; fix: leave the pool's image empty", vm.Image)
		return ev
	}
	id, err := azure.IdentityFromBoot(azure.BootData{Windows: vm.OS == "windows", AdminUsername: vm.Boot.AdminUsername, AdminPassword: vm.Boot.AdminPassword,
		SSHPublicKeys: vm.Boot.SSHPublicKeys, CustomData: vm.Boot.CustomData, ProtectedCommand: vm.Boot.ProtectedCommand})
	if err != nil {
		ev.Err = fmt.Errorf("first boot: %w", err)
		return ev
	}
	ev.Instance.Identity = id
	if vm.OS == "windows" {
		// Azure's provisioning sets osProfile.computerName before the first login.
		ev.Instance.ComputerName = vm.ComputerName
	}
	return ev
}

// Cloud implements cloudemu.Emulator.
func (e *Emulator) Cloud() string { return "azure" }

// ObjectTags implements cloudemu.Tagger: what Objects lists that Azure tags,
// by its tags (a VM's OS disk and subnets carry none of their own).
func (e *Emulator) ObjectTags(cluster string) map[string]map[string]string {
	return e.Server.TaggedTags(azure.TagCluster, cluster)
}

// Objects implements cloudemu.Emulator: the cluster's resource group with
// all it holds, its tagged resources elsewhere and its Key Vault secrets.
func (e *Emulator) Objects(cluster string) []string {
	return e.Server.Tagged(azure.TagCluster, cluster)
}

// Env implements cloudemu.Emulator: azidentity's own variables for the
// service principal and authority, and the ARM endpoint, subscription,
// location, vault and CA the provider's azure block takes.
func (e *Emulator) Env() map[string]string {
	return map[string]string{
		"AZURE_TENANT_ID":                 e.Server.TenantID(),
		"AZURE_CLIENT_ID":                 e.opts.ClientID,
		"AZURE_CLIENT_SECRET":             e.opts.ClientSecret,
		"AZURE_AUTHORITY_HOST":            e.Server.URL() + "/",
		"AZURE_RESOURCE_MANAGER_ENDPOINT": e.Server.URL(),
		"AZURE_SUBSCRIPTION_ID":           e.Server.SubscriptionID(),
		"AZURE_LOCATION":                  e.Server.Location(),
		"AZURE_KEY_VAULT_URL":             e.Server.VaultURL(),
		"AZURE_CA_BUNDLE":                 e.CABundle,
		// A disk encryption set that exists in the lab, for azure.disk_encryption_set_id.
		"MIXEDK8S_AZURE_DISK_ENCRYPTION_SET_ID": e.Server.DiskEncryptionSetID(arm.LabDiskEncryptionSet),
		// The vault's name resolves only in the lab: the provider connects
		// names under this .test domain to 127.0.0.1 (TLS still checks them).
		"MIXEDK8S_LAB_LOOPBACK_DOMAIN": "emu.test",
	}
}

// ResetCalls implements cloudemu.Emulator.
func (e *Emulator) ResetCalls() { e.Server.ResetCalls() }

// Calls implements cloudemu.Emulator.
func (e *Emulator) Calls() map[string]int { return e.Server.Calls() }

// Mutating implements cloudemu.Emulator.
func (e *Emulator) Mutating(action string) bool { return arm.Mutating(action) }

// Close implements cloudemu.Emulator.
func (e *Emulator) Close() { e.Server.Close() }
