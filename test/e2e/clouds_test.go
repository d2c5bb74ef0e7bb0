package e2e_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/aws"
	"github.com/mixedk8s/mixedk8s/clouds/azure"
	"github.com/mixedk8s/mixedk8s/clouds/gcp"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/test/lab"
	"github.com/mixedk8s/mixedk8s/test/lab/arm"
	"github.com/mixedk8s/mixedk8s/test/lab/azurelab"
	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
	"github.com/mixedk8s/mixedk8s/test/lab/gce"
	"github.com/mixedk8s/mixedk8s/test/lab/gcelab"
)

// row is one cloud of the table: how the lab runs its emulator, how a
// process that reads only the lab's env builds the cloud, and the few
// readings of the emulator the scenarios need in neutral terms. Everything
// a scenario knows of a cloud comes from here or from its clouds.Profile.
type row struct {
	// name is the cloud's profile name.
	name string
	// starter is the lab's starter of the cloud's emulator; nil for AWS,
	// whose EC2 emulator the lab always runs.
	starter func() cloudemu.Starter
	// place sets the spec's cloud block from the lab's variables.
	place func(spec *cluster.Spec, vars map[string]string)
	// connect builds the cloud of a spec from the lab's variables only.
	connect func(t testing.TB, vars map[string]string, spec cluster.Spec) clouds.Cloud
	// vms lists the emulator's instances.
	vms func(l *lab.Lab) []vm
	// image is what the emulator reports as the image of a node booted
	// from the cloud's default image for its OS.
	image func(l *lab.Lab, n cluster.Node) (string, error)
	// rates installs the standing faults: throttling on every
	// throttleEvery-th call of each action, a server error on every
	// errorEvery-th, counted per action as the EC2 lab's rate faults are.
	rates func(l *lab.Lab, throttleEvery, errorEvery int) error
	// capacity takes an instance type out of capacity (on) or gives it
	// back, and names the cloud's error code for it.
	capacity     func(l *lab.Lab, instanceType string, on bool) error
	capacityCode string
	// loseReplies makes the next n instance creations act and lose their
	// reply (the connection closes before the answer) and returns the
	// action that counts them; nil where the emulator models no lost reply (EC2).
	loseReplies func(l *lab.Lab, n int) string
	// refuse, when set, takes from the account something every cluster
	// needs (on) or gives it back, and names the configuration field and
	// the cloud's code of the refusal the cloud's preflight must give
	// before anything is created; nil where the cloud has no preflight.
	refuse func(l *lab.Lab, on bool) (field, code string)
	// windowsType, when set, is the Windows pool's type in the capacity
	// scenario: one the Linux nodes do not use, where the cloud's default
	// is the same for both.
	windowsType string
}

// vm is an emulated instance in neutral terms.
type vm struct {
	ID    string
	Tags  map[string]string
	State string
	// Running: the instance runs; Gone: it is terminated (EC2 keeps
	// terminated instances listed for a while); Leaving: it is being deleted.
	Running, Gone, Leaving bool
	Type, Image            string
	// Windows: the emulator runs the instance as Windows (EC2's platform,
	// the OS of the ARM image or of the Compute Engine image).
	Windows bool
}

// rows is the table: every scenario runs once per row.
var rows = []*row{awsRow, azureRow, gcpRow}

// everyNth counts calls per action and says which of a list of "every
// n-th call" rules fires, as the EC2 lab's rate faults count (test/lab
// faults.go): each rule counts every call of every action.
type everyNth struct {
	mu    sync.Mutex
	every []int
	seen  []map[string]int
}

func newEveryNth(every ...int) *everyNth {
	e := &everyNth{every: every}
	for range every {
		e.seen = append(e.seen, map[string]int{})
	}
	return e
}

// fire returns the index of the first rule that fires on this call of action, or -1.
func (e *everyNth) fire(action string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, n := range e.every {
		e.seen[i][action]++
		if e.seen[i][action]%n == 0 {
			return i
		}
	}
	return -1
}

var awsRow = &row{
	name: "aws",
	place: func(spec *cluster.Spec, vars map[string]string) {
		spec.AWS = &cluster.AWSSpec{Region: vars["AWS_REGION"]}
	},
	connect: func(t testing.TB, vars map[string]string, spec cluster.Spec) clouds.Cloud {
		ca, err := os.ReadFile(vars["AWS_CA_BUNDLE"])
		if err != nil {
			t.Fatal(err)
		}
		c, err := aws.New(context.Background(), aws.Config{
			Region:          spec.AWS.Region,
			Endpoint:        vars["AWS_ENDPOINT_URL"],
			CABundle:        ca,
			AccessKeyID:     vars["AWS_ACCESS_KEY_ID"],
			SecretAccessKey: vars["AWS_SECRET_ACCESS_KEY"],
			RetryMode:       "standard",
			MaxBackoff:      maxBackoff,
			PollInterval:    pollInterval,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	},
	vms: func(l *lab.Lab) []vm {
		var out []vm
		for _, in := range l.EC2.Instances() {
			out = append(out, vm{ID: in.ID, Tags: in.Tags, State: in.State, Running: in.State == "running",
				Gone: in.State == "terminated", Leaving: in.State == "shutting-down",
				Type: in.InstanceType, Image: in.ImageID, Windows: in.Platform == "windows"})
		}
		return out
	},
	image: func(l *lab.Lab, n cluster.Node) (string, error) {
		param, err := aws.Profile.Image(string(n.OS), n.WindowsVersion)
		if err != nil {
			return "", err
		}
		id, _ := l.EC2.ImageID(param)
		return id, nil
	},
	rates: func(l *lab.Lab, throttleEvery, errorEvery int) error {
		for _, f := range []lab.Fault{
			{Kind: lab.FaultThrottle, Action: "*", Every: throttleEvery},
			{Kind: lab.Fault5xx, Action: "*", Every: errorEvery},
		} {
			if err := l.Inject(f); err != nil {
				return err
			}
		}
		return nil
	},
	capacity: func(l *lab.Lab, instanceType string, on bool) error {
		return l.Inject(lab.Fault{Kind: lab.FaultCapacity, InstanceType: instanceType, Off: !on})
	},
	capacityCode: "InsufficientInstanceCapacity",
}

// azureClient is the lab's service principal (test/lab/azurelab).
const azureClient, azureSecret = "lab-e2e-client", "lab-e2e-secret"

var azureRow = &row{
	name: "azure",
	starter: func() cloudemu.Starter {
		return azurelab.Starter(azurelab.Options{ClientID: azureClient, ClientSecret: azureSecret, OperationDelay: 10 * time.Millisecond})
	},
	place: func(spec *cluster.Spec, vars map[string]string) {
		// A resource group per cluster: Destroy deletes the group it made.
		spec.Azure = &cluster.AzureSpec{SubscriptionID: vars["AZURE_SUBSCRIPTION_ID"], Location: vars["AZURE_LOCATION"], ResourceGroup: spec.Name + "-rg"}
	},
	connect: func(t testing.TB, vars map[string]string, spec cluster.Spec) clouds.Cloud {
		ca, err := os.ReadFile(vars["AZURE_CA_BUNDLE"])
		if err != nil {
			t.Fatal(err)
		}
		c, err := azure.New(azure.Config{
			SubscriptionID: spec.Azure.SubscriptionID, Location: spec.Azure.Location, ResourceGroup: spec.Azure.ResourceGroup,
			VaultURL: vars["AZURE_KEY_VAULT_URL"],
			Cloud:    azure.CloudEndpoints{AuthorityHost: vars["AZURE_AUTHORITY_HOST"], ResourceManagerEndpoint: vars["AZURE_RESOURCE_MANAGER_ENDPOINT"]},
			CABundle: ca,
			// The vault's name is under emu.test, which only the lab resolves.
			DialContext:  arm.Dial,
			ClientSecret: &azure.ClientSecret{TenantID: vars["AZURE_TENANT_ID"], ClientID: vars["AZURE_CLIENT_ID"], Secret: vars["AZURE_CLIENT_SECRET"]},
			RetryDelay:   baseBackoff, PollFrequency: pollInterval,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	},
	vms: func(l *lab.Lab) []vm {
		var out []vm
		for _, v := range emulator[*azurelab.Emulator](l, "azure").Server.VMs() {
			out = append(out, vm{ID: v.ID, Tags: v.Tags, State: v.State, Running: v.State == "Succeeded", Leaving: v.State == "Deleting",
				Type: v.Size, Image: v.Image, Windows: v.OS == "windows"})
		}
		return out
	},
	image: func(_ *lab.Lab, n cluster.Node) (string, error) {
		urn, err := azure.Profile.Image(string(n.OS), n.WindowsVersion)
		if err != nil {
			return "", err
		}
		// The emulator reports publisher:offer:sku, without the version.
		return urn[:strings.LastIndex(urn, ":")], nil
	},
	rates: func(l *lab.Lab, throttleEvery, errorEvery int) error {
		rule := newEveryNth(throttleEvery, errorEvery)
		emulator[*azurelab.Emulator](l, "azure").Server.Fault(func(op string) *arm.Error {
			e := [...]arm.Error{arm.ErrThrottled, arm.ErrInternal}
			if i := rule.fire(op); i >= 0 {
				return &e[i]
			}
			return nil
		})
		return nil
	},
	capacity: func(l *lab.Lab, instanceType string, on bool) error {
		emulator[*azurelab.Emulator](l, "azure").Server.NoCapacity(instanceType, on)
		return nil
	},
	capacityCode: "SkuNotAvailable",
	loseReplies: func(l *lab.Lab, n int) string {
		emulator[*azurelab.Emulator](l, "azure").Server.Drop("virtualMachines.Put", n, true)
		return "virtualMachines.Put"
	},
	refuse: func(l *lab.Lab, on bool) (string, string) {
		emulator[*azurelab.Emulator](l, "azure").Server.Unregister("Microsoft.Compute", on)
		return "azure.subscription_id", "MissingSubscriptionRegistration"
	},
	windowsType: "Standard_D8s_v5",
}

// gcpToken is the only bearer token the lab's Compute Engine accepts.
const gcpToken = "lab-e2e-gcp-token"

var gcpRow = &row{
	name: "gcp",
	starter: func() cloudemu.Starter {
		return gcelab.Starter(gcelab.Options{Token: gcpToken, OperationDelay: 10 * time.Millisecond, BootDelay: 30 * time.Millisecond})
	},
	place: func(spec *cluster.Spec, vars map[string]string) {
		region := vars["MIXEDK8S_GCP_REGION"]
		// Compute Engine names a region's zones <region>-a, -b, ...
		spec.GCP = &cluster.GCPSpec{Project: vars["GOOGLE_CLOUD_PROJECT"], Region: region, Zone: region + "-a"}
	},
	connect: func(t testing.TB, vars map[string]string, spec cluster.Spec) clouds.Cloud {
		ca, err := os.ReadFile(vars["MIXEDK8S_GCP_CA_BUNDLE"])
		if err != nil {
			t.Fatal(err)
		}
		c, err := gcp.New(context.Background(), gcp.Config{
			Project: spec.GCP.Project, Region: spec.GCP.Region, Zones: []string{spec.GCP.Zone},
			Endpoint: vars["MIXEDK8S_GCP_ENDPOINT"], CABundle: ca,
			TokenSource:  oauth2.StaticTokenSource(&oauth2.Token{AccessToken: vars["MIXEDK8S_GCP_ACCESS_TOKEN"]}),
			PollInterval: pollInterval, InitialBackoff: baseBackoff, MaxBackoff: maxBackoff,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	},
	vms: func(l *lab.Lab) []vm {
		var out []vm
		for _, in := range emulator[*gcelab.Emulator](l, "gcp").Server.Instances() {
			out = append(out, vm{ID: in.Name, Tags: in.Labels, State: in.Status, Running: in.Status == "RUNNING", Leaving: in.Status == "STOPPING",
				Type: in.MachineType, Image: in.Image, Windows: in.OS == "windows"})
		}
		return out
	},
	image: func(_ *lab.Lab, n cluster.Node) (string, error) {
		family, err := gcp.Profile.Image(string(n.OS), n.WindowsVersion)
		if err != nil {
			return "", err
		}
		// The emulator reports the image the family resolved to.
		name, _ := gce.ImageName(family)
		return name, nil
	},
	rates: func(l *lab.Lab, throttleEvery, errorEvery int) error {
		rule := newEveryNth(throttleEvery, errorEvery)
		emulator[*gcelab.Emulator](l, "gcp").Server.Fault(func(method string, _ *http.Request) *gce.Error {
			e := [...]gce.Error{gce.ErrRateLimit, gce.ErrBackend}
			// Secret Manager throttles with its own reply, not Compute's.
			if strings.HasPrefix(method, "secrets.") || strings.HasPrefix(method, "versions.") {
				e[0] = gce.ErrSecretsRateLimit
			}
			if i := rule.fire(method); i >= 0 {
				return &e[i]
			}
			return nil
		})
		return nil
	},
	capacity: func(l *lab.Lab, instanceType string, on bool) error {
		emulator[*gcelab.Emulator](l, "gcp").Server.Stockout(instanceType, on)
		return nil
	},
	capacityCode: "ZONE_RESOURCE_POOL_EXHAUSTED",
	loseReplies: func(l *lab.Lab, n int) string {
		emulator[*gcelab.Emulator](l, "gcp").Server.Drop("instances.insert", n)
		return "instances.insert"
	},
	windowsType: "n2-standard-8",
}

// rowsWith lists the rows for which has is true.
func rowsWith(has func(r *row) bool) []*row {
	var out []*row
	for _, r := range rows {
		if has(r) {
			out = append(out, r)
		}
	}
	return out
}

// emulator is the lab's running emulator of a cloud, as its adapter's type.
func emulator[E cloudemu.Emulator](l *lab.Lab, cloud string) E {
	return l.Emulator(cloud).(E)
}
