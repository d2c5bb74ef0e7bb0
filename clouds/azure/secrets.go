package azure

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// The cluster's secrets live in the Key Vault of Config.VaultURL, one
// secret per name, tagged with the cluster and the mixedk8s name. The vault
// is the user's: vault names are global and soft-deleted vaults keep their
// name for up to 90 days
// (https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview),
// so a vault per cluster would leave a reserved name behind every destroy.
// Key Vault encrypts what it stores with keys of its own (software keys
// validated to FIPS 140 on the Standard tier, HSM-protected on Premium,
// https://learn.microsoft.com/azure/key-vault/general/overview):
// a secret takes no customer-managed key, so who may read the cluster's
// secrets is the vault's access control (RBAC or access policies), which
// the user owns. Config.DiskEncryptionSetID is for the disks only.

// tagSecret holds the mixedk8s name of a secret (Key Vault names allow only letters, digits and '-').
const tagSecret = "mixedk8s.io_secret"

// contentType marks values mixedk8s stored: Key Vault values are strings, ours are base64 bytes.
const contentType = "application/octet-stream; base64"

// secretName is the Key Vault name of a cluster's secret: 1-127
// characters of [0-9a-zA-Z-]
// (https://learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates#object-identifiers),
// readable, and made unique by a hash of the exact cluster and name.
func secretName(cluster, name string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r < 128 && (r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return r
			}
			return '-'
		}, s)
	}
	sum := sha256.Sum256([]byte(cluster + "\x00" + name))
	s := "mixedk8s-" + clean(cluster) + "--" + clean(name)
	return s[:min(len(s), 127-17)] + "-" + hex.EncodeToString(sum[:8])
}

func (c *Cloud) vault(op, object string) error {
	if c.secrets != nil {
		return nil
	}
	return &clouds.Error{Kind: clouds.KindInvalid, Op: op, Object: object, Err: errors.New("no Key Vault is configured"),
		Fix: "set the Azure Key Vault URL (Config.VaultURL) the cluster keeps its secrets in"}
}

// settleAfterSet is how long a writer waits before reading the versions
// back: Key Vault stamps versions to the second (attributes.created is Unix
// seconds), so once the second of our write has passed, every competing
// version of that second is visible, and later ones are younger than ours.
const settleAfterSet = 1100 * time.Millisecond

// EnsureSecret implements clouds.Cloud. Key Vault has no create-if-absent,
// so concurrent writers (other processes; callers in this one are
// serialised) may each add a version; every reader takes the oldest
// enabled version, so all of them agree on the first value written.
func (c *Cloud) EnsureSecret(ctx context.Context, cluster string, name clouds.SecretName, value []byte) ([]byte, error) {
	kv := Profile.SecretName(cluster, name)
	object := fmt.Sprintf("secret %q of cluster %q", name, cluster)
	if err := c.vault("SetSecret", object); err != nil {
		return nil, err
	}
	mu, _ := c.secretLocks.LoadOrStore(kv, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if v, ok, err := c.Secret(ctx, cluster, name); err != nil || ok {
		return v, err
	}
	params := azsecrets.SetSecretParameters{Value: to(base64.StdEncoding.EncodeToString(value)), ContentType: to(contentType),
		Tags: c.tags(cluster, tagSecret, string(name))}
	_, err := c.secrets.SetSecret(ctx, kv, params, nil)
	if innerCode(err, "ObjectIsDeletedButRecoverable") {
		// Left soft-deleted by an earlier destroy whose purge did not finish.
		if err := c.purge(ctx, kv, object); err != nil {
			return nil, err
		}
		_, err = c.secrets.SetSecret(ctx, kv, params, nil)
	}
	if err != nil {
		return nil, call{op: "SetSecret", object: object}.classify(err)
	}
	if err := sleep(ctx, settleAfterSet); err != nil {
		return nil, err
	}
	v, ok, err := c.Secret(ctx, cluster, name)
	if err == nil && !ok {
		err = &clouds.Error{Kind: clouds.KindTransient, Op: "GetSecret", Object: object, Err: errors.New("the secret was set but cannot be read yet")}
	}
	return v, err
}

// Secret implements clouds.Cloud: the oldest enabled version's value.
func (c *Cloud) Secret(ctx context.Context, cluster string, name clouds.SecretName) ([]byte, bool, error) {
	kv := Profile.SecretName(cluster, name)
	object := fmt.Sprintf("secret %q of cluster %q", name, cluster)
	if err := c.vault("GetSecret", object); err != nil {
		return nil, false, err
	}
	var first *azsecrets.SecretProperties
	pager := c.secrets.NewListSecretPropertiesVersionsPager(kv, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if isNotFound(err) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, call{op: "GetSecretVersions", object: object}.classify(err)
		}
		for _, p := range page.Value {
			if p.Attributes == nil || !val(p.Attributes.Enabled) || p.ID == nil {
				continue
			}
			if first == nil || older(p, first) {
				first = p
			}
		}
	}
	if first == nil {
		return nil, false, nil
	}
	got, err := c.secrets.GetSecret(ctx, kv, first.ID.Version(), nil)
	if isNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, call{op: "GetSecret", object: object}.classify(err)
	}
	if val(got.ContentType) != contentType {
		return nil, false, fmt.Errorf("the Key Vault secret %q is not what mixedk8s stored (content type %q); fix: delete it if cluster %q has no nodes left", kv, val(got.ContentType), cluster)
	}
	v, err := base64.StdEncoding.DecodeString(val(got.Value))
	if err != nil {
		return nil, false, fmt.Errorf("the Key Vault secret %q is not base64; fix: delete it if cluster %q has no nodes left", kv, cluster)
	}
	return v, true, nil
}

func older(a, b *azsecrets.SecretProperties) bool {
	ta, tb := val(a.Attributes.Created), val(b.Attributes.Created)
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.ID.Version() < b.ID.Version()
}

// DeleteSecrets implements clouds.Cloud: every secret tagged with the
// cluster is deleted, then purged, so that neither it nor its name is left.
func (c *Cloud) DeleteSecrets(ctx context.Context, cluster string) error {
	object := fmt.Sprintf("secrets of cluster %q", cluster)
	if err := c.vault("DeleteSecret", object); err != nil {
		return err
	}
	var names []string
	pager := c.secrets.NewListSecretPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return call{op: "GetSecrets", object: object}.classify(err)
		}
		for _, p := range page.Value {
			if hasClusterTag(p.Tags, cluster) && p.ID != nil {
				names = append(names, p.ID.Name())
			}
		}
	}
	for _, n := range names {
		_, err := c.secrets.DeleteSecret(ctx, n, nil)
		if err != nil && !isNotFound(err) {
			return call{op: "DeleteSecret", object: fmt.Sprintf("Key Vault secret %q", n)}.classify(err)
		}
	}
	var deleted []string
	dpager := c.secrets.NewListDeletedSecretPropertiesPager(nil)
	for dpager.More() {
		page, err := dpager.NextPage(ctx)
		if err != nil {
			return call{op: "GetDeletedSecrets", object: object}.classify(err)
		}
		for _, p := range page.Value {
			if hasClusterTag(p.Tags, cluster) && p.ID != nil {
				deleted = append(deleted, p.ID.Name())
			}
		}
	}
	for _, n := range deleted {
		if err := c.purge(ctx, n, fmt.Sprintf("Key Vault secret %q", n)); err != nil {
			return err
		}
	}
	return nil
}

// purge removes a soft-deleted secret. Deletion completes asynchronously;
// until it has, purge answers 409 ObjectIsBeingDeleted
// (https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview), so it is tried again briefly.
func (c *Cloud) purge(ctx context.Context, kv, object string) error {
	k := call{op: "PurgeDeletedSecret", object: object}
	for try := 0; ; try++ {
		_, err := c.secrets.PurgeDeletedSecret(ctx, kv, nil)
		switch {
		case err == nil, isNotFound(err):
			return nil
		case innerCode(err, "ObjectIsBeingDeleted") && try < 20:
			if err := sleep(ctx, time.Duration(try+1)*50*time.Millisecond); err != nil {
				return err
			}
		default:
			ce := k.classify(err)
			if innerCode(err, "ObjectIsBeingDeleted") {
				ce.(*clouds.Error).Kind = clouds.KindTransient
			}
			return ce
		}
	}
}

// innerCode reports a Key Vault conflict by its inner code: the outer code
// is "Conflict", the reason is error.innererror.code
// (https://learn.microsoft.com/azure/key-vault/general/rest-error-codes).
func innerCode(err error, code string) bool {
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusConflict || re.RawResponse == nil {
		return false
	}
	return strings.Contains(re.Error(), `"`+code+`"`)
}
