package gcp

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/iterator"
	"google.golang.org/protobuf/proto"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// The cluster's secrets are Secret Manager secrets, one per name, labelled
// with the cluster, encrypted with Config.KMSKeyName when it is set. A secret's first version is its value: EnsureSecret
// adds a version and then reads version 1, so two processes racing agree
// on the first value written (versions are numbered in order,
// https://cloud.google.com/secret-manager/docs/add-secret-version).

// secretID is the Secret Manager secret ID of one of a cluster's secrets:
// IDs allow [a-zA-Z0-9_-], so every other byte, and "_" itself, is written
// as _XX (hex); the mapping is one to one.
func secretID(cluster, name string) string {
	var b strings.Builder
	b.WriteString("mixedk8s-" + cluster + "-")
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "_%02x", ch)
		}
	}
	return b.String()
}

func (c *Cloud) secretName(cluster string, name clouds.SecretName) string {
	return "projects/" + c.cfg.Project + "/secrets/" + secretID(cluster, string(name))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// replication is a new secret's replication: automatic, or with
// Config.KMSKeyName one user-managed replica in the region encrypted with
// it, since a replica's key must live in the replica's location
// (secretmanagerpb CustomerManagedEncryption.kms_key_name;
// https://cloud.google.com/secret-manager/docs/cmek).
func (c *Cloud) replication() *secretmanagerpb.Replication {
	if c.cfg.KMSKeyName == "" {
		return &secretmanagerpb.Replication{Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}}}
	}
	return &secretmanagerpb.Replication{Replication: &secretmanagerpb.Replication_UserManaged_{UserManaged: &secretmanagerpb.Replication_UserManaged{
		Replicas: []*secretmanagerpb.Replication_UserManaged_Replica{{
			Location:                  c.cfg.Region,
			CustomerManagedEncryption: &secretmanagerpb.CustomerManagedEncryption{KmsKeyName: c.cfg.KMSKeyName},
		}},
	}}}
}

// EnsureSecret implements clouds.Cloud.
func (c *Cloud) EnsureSecret(ctx context.Context, cluster string, name clouds.SecretName, value []byte) ([]byte, error) {
	if v, ok, err := c.Secret(ctx, cluster, name); err != nil || ok {
		return v, err
	}
	secret := c.secretName(cluster, name)
	k := call{op: "secrets.create", object: fmt.Sprintf("secret %q", secret)}
	_, err := c.secrets.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{
		Parent:   "projects/" + c.cfg.Project,
		SecretId: secretID(cluster, string(name)),
		Secret: &secretmanagerpb.Secret{
			Replication: c.replication(),
			Labels:      c.withLabels(map[string]string{LabelCluster: labelValue(cluster)}),
		},
	}, c.retry())
	if err != nil && !isCode(err, codeAlreadyExists) {
		ce := k.classify(err)
		if c.cfg.KMSKeyName != "" && clouds.KindOf(ce) == clouds.KindInvalid {
			if e, ok := ce.(*clouds.Error); ok {
				e.Fix = fmt.Sprintf("set gcp.kms_key_name to a key of a key ring in %s (projects/<project>/locations/%s/keyRings/<ring>/cryptoKeys/<key>)", c.cfg.Region, c.cfg.Region)
			}
		}
		return nil, ce
	}
	k.op = "secrets.addVersion"
	crc := int64(crc32.Checksum(value, castagnoli))
	if _, err := c.secrets.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{
		Parent:  secret,
		Payload: &secretmanagerpb.SecretPayload{Data: value, DataCrc32C: proto.Int64(crc)},
	}, c.retry()); err != nil {
		return nil, k.classify(err)
	}
	v, ok, err := c.Secret(ctx, cluster, name)
	if err == nil && !ok {
		err = &clouds.Error{Kind: clouds.KindTransient, Op: "versions.access", Object: k.object, Err: errors.New("the version just added cannot be read yet")}
	}
	return v, err
}

// Secret implements clouds.Cloud: the secret's first version.
func (c *Cloud) Secret(ctx context.Context, cluster string, name clouds.SecretName) ([]byte, bool, error) {
	secret := c.secretName(cluster, name)
	out, err := c.secrets.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: secret + "/versions/1"}, c.retry())
	if isCode(err, codeNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, call{op: "versions.access", object: fmt.Sprintf("secret %q", secret)}.classify(err)
	}
	data := out.GetPayload().GetData()
	if want := out.GetPayload().DataCrc32C; want != nil && int64(crc32.Checksum(data, castagnoli)) != *want {
		return nil, false, &clouds.Error{Kind: clouds.KindTransient, Op: "versions.access", Object: fmt.Sprintf("secret %q", secret), Err: errors.New("the payload does not match its CRC32C")}
	}
	return data, true, nil
}

// DeleteSecrets implements clouds.Cloud: every secret labelled with the cluster.
func (c *Cloud) DeleteSecrets(ctx context.Context, cluster string) error {
	k := call{op: "secrets.list", object: fmt.Sprintf("secrets of cluster %q", cluster)}
	it := c.secrets.ListSecrets(ctx, &secretmanagerpb.ListSecretsRequest{
		Parent: "projects/" + c.cfg.Project, Filter: "labels." + LabelCluster + "=" + labelValue(cluster), PageSize: int32(c.cfg.PageSize),
	}, c.retry())
	var names []string
	for {
		s, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return k.classify(err)
		}
		// The filter is the server's; the label check keeps a loose filter from reaching another cluster.
		if s.GetLabels()[LabelCluster] == labelValue(cluster) && strings.Contains(s.GetName(), "/secrets/mixedk8s-"+cluster+"-") {
			names = append(names, s.GetName())
		}
	}
	for _, n := range names {
		err := c.secrets.DeleteSecret(ctx, &secretmanagerpb.DeleteSecretRequest{Name: n}, c.retry())
		if err != nil && !isCode(err, codeNotFound) {
			return call{op: "secrets.delete", object: fmt.Sprintf("secret %q", n)}.classify(err)
		}
	}
	return nil
}
