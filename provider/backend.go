package provider

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/provision"
)

// backend is the seam between the provider and whatever provisions: it
// builds the cluster.Options (a cloud and a provisioner) that one cluster's
// Apply, Observe, Kubeconfig and Destroy act through. The provider never
// provisions by itself; it chooses a backend in Configure and sets
// Options.Progress on what the backend returns. Tests pass an in-memory one
// (export_test.go).
//
// The spec passed in has its defaults applied and names exactly one cloud,
// except when Terraform imports a cluster or reads a data source without a
// cloud block: then the backend uses its own default location.
type backend interface {
	// Options returns the cloud and provisioner for the cluster in spec.
	Options(ctx context.Context, spec cluster.Spec) (cluster.Options, error)
}

// cloudBackend is what Configure builds from the provider block: each
// cloud's block (aws.go, azure.go, gcp.go) builds its cloud, with the agent
// provisioner.
type cloudBackend struct {
	config providerConfig
}

func (b cloudBackend) Options(ctx context.Context, spec cluster.Spec) (cluster.Options, error) {
	name := spec.CloudName()
	if name == "" {
		name = b.config.defaultCloud()
	}
	c, ok := cloudBlockOf(name)
	if !ok {
		return cluster.Options{}, fmt.Errorf("cluster %q names no cloud; fix: set one of the aws, azure or gcp attributes on the resource, or configure exactly one of them on the provider", spec.Name)
	}
	return c.options(ctx, b, spec)
}

// options builds the agent provisioner on a cloud, reaching nodes through
// the provider's bastion when one is configured.
func (b cloudBackend) options(cloud clouds.Cloud) (cluster.Options, error) {
	pcfg := provision.Config{Cloud: cloud, Secrets: cloud}
	if bs := b.config.Bastion; bs != nil && bs.PrivateKey.ValueString() != "" {
		signer, err := ssh.ParsePrivateKey([]byte(bs.PrivateKey.ValueString()))
		if err != nil {
			// The key itself never goes into the message.
			release(cluster.Options{Cloud: cloud})
			return cluster.Options{}, fmt.Errorf("bastion.private_key is not an unencrypted SSH private key (%s); fix: pass the key file's contents with file(...), without a passphrase", keyParseReason(err))
		}
		pcfg.BastionSigner = signer
	}
	prov, err := provision.New(pcfg)
	if err != nil {
		release(cluster.Options{Cloud: cloud})
		return cluster.Options{}, err
	}
	return cluster.Options{Cloud: cloud, Provisioner: prov}, nil
}

// release closes what Options built that holds connections (the agent
// provisioner's bastion and API server connections, a cloud's clients):
// each operation builds its own and releases it when it returns, so a plan
// of many clusters keeps no connection open behind it.
func release(opts cluster.Options) {
	for _, c := range []any{opts.Provisioner, opts.Cloud} {
		if closer, ok := c.(io.Closer); ok {
			_ = closer.Close() // nothing to do about a failed close of an idle connection
		}
	}
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
