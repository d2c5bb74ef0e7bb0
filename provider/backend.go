package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/config"
	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
	mkaws "github.com/mixedk8s/mixedk8s/clouds/aws"
	// The provider validates Azure and GCP clusters with their profiles.
	_ "github.com/mixedk8s/mixedk8s/clouds/azure"
	_ "github.com/mixedk8s/mixedk8s/clouds/gcp"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/provision"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
)

// Backend is the seam between the provider and whatever provisions: it
// builds the cluster.Options (a cloud and a provisioner) that one cluster's
// Apply, Observe, Kubeconfig and Destroy act through. The provider never
// provisions by itself; it chooses a Backend in Configure and sets
// Options.Progress on what the Backend returns.
//
// The spec passed in has its defaults applied and names exactly one cloud,
// except when Terraform imports a cluster or reads a data source without a
// cloud block: then the Backend uses its own default location.
type Backend interface {
	// Options returns the cloud and provisioner for the cluster in spec.
	Options(ctx context.Context, spec cluster.Spec) (cluster.Options, error)
}

// BackendFunc adapts a function to Backend.
type BackendFunc func(ctx context.Context, spec cluster.Spec) (cluster.Options, error)

// Options implements Backend.
func (f BackendFunc) Options(ctx context.Context, spec cluster.Spec) (cluster.Options, error) {
	return f(ctx, spec)
}

// cloudBackend is what Configure builds from the provider block: AWS on
// clouds/aws and Azure on clouds/azure, with the agent provisioner. GCP says
// it is not in this build instead of pretending to work.
type cloudBackend struct {
	config providerConfig
}

func (b cloudBackend) Options(ctx context.Context, spec cluster.Spec) (cluster.Options, error) {
	name := spec.CloudName()
	if name == "" {
		name = b.config.defaultCloud()
	}
	switch name {
	case "":
		return cluster.Options{}, fmt.Errorf("cluster %q names no cloud; fix: set one of the aws, azure or gcp attributes on the resource, or configure exactly one of them on the provider", spec.Name)
	case "aws":
		return b.aws(ctx, spec)
	case "azure":
		return b.azure(spec)
	}
	return cluster.Options{}, fmt.Errorf("the %s backend is not available in this build yet: this provider build validates cluster configurations but cannot plan, create or read clusters on %s; fix: use aws, or the lab (examples/lab)", name, name)
}

// aws builds the EC2 cloud and the agent provisioner for one cluster.
func (b cloudBackend) aws(ctx context.Context, spec cluster.Spec) (cluster.Options, error) {
	// Nodes cannot be built without the agents; say so at plan time, not halfway through an apply.
	if err := bundle.Check(); err != nil {
		return cluster.Options{}, err
	}
	cfg := mkaws.Config{}
	if spec.AWS != nil {
		cfg.Region = spec.AWS.Region
		cfg.Zones = spec.AWS.Zones
	}
	if p := b.config.AWS; p != nil {
		if cfg.Region == "" {
			cfg.Region = p.Region.ValueString()
		}
		cfg.Endpoint = p.Endpoint.ValueString()
		cfg.CABundle = []byte(p.CABundle.ValueString())
		if profile := p.Profile.ValueString(); profile != "" {
			awsCfg, err := config.LoadDefaultConfig(ctx, config.WithSharedConfigProfile(profile))
			if err != nil {
				return cluster.Options{}, fmt.Errorf("failed to load the AWS profile %q: %w; fix: check aws.profile against ~/.aws/config", profile, err)
			}
			cfg.Credentials = awsCfg.Credentials
		}
	}
	if cfg.Region == "" {
		return cluster.Options{}, fmt.Errorf("cluster %q has no AWS region; fix: set aws.region on the resource or on the provider", spec.Name)
	}
	cloud, err := mkaws.New(ctx, cfg)
	if err != nil {
		return cluster.Options{}, err
	}
	return b.options(cloud)
}

// options builds the agent provisioner on a cloud, reaching nodes through
// the provider's bastion when one is configured.
func (b cloudBackend) options(cloud clouds.Cloud) (cluster.Options, error) {
	pcfg := provision.Config{Cloud: cloud, Secrets: cloud}
	if bs := b.config.Bastion; bs != nil && bs.PrivateKey.ValueString() != "" {
		signer, err := ssh.ParsePrivateKey([]byte(bs.PrivateKey.ValueString()))
		if err != nil {
			// The key itself never goes into the message.
			return cluster.Options{}, fmt.Errorf("bastion.private_key is not an unencrypted SSH private key (%s); fix: pass the key file's contents with file(...), without a passphrase", keyParseReason(err))
		}
		pcfg.BastionSigner = signer
	}
	prov, err := provision.New(pcfg)
	if err != nil {
		return cluster.Options{}, err
	}
	return cluster.Options{Cloud: cloud, Provisioner: prov}, nil
}

// keyParseReason names why a key did not parse without quoting any of it.
func keyParseReason(err error) string {
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return "it is encrypted"
	}
	return "it does not parse"
}

// clusterTag is the spec's cloud's cluster tag key, for messages.
func clusterTag(spec cluster.Spec) string {
	if p, ok := clouds.ProfileOf(spec.CloudName()); ok {
		return p.Tags.Cluster
	}
	return "the cluster tag"
}
