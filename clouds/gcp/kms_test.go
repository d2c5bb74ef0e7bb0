package gcp_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/gcp"
)

// With gcp.kms_key_name the secrets get one user-managed replica in the
// region encrypted with the key, and boot disks are encrypted with it;
// without, secrets replicate automatically under Google's keys.
func TestKMSKeyEncryptsSecretsAndBootDisks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, withKey := range []bool{false, true} {
		e := newEnv(t, func(c *gcp.Config) {
			if withKey {
				c.KMSKeyName = "projects/keys-prod/locations/" + c.Region + "/keyRings/mixedk8s/cryptoKeys/cluster"
			}
		})
		key := ""
		if withKey {
			key = "projects/keys-prod/locations/" + e.srv.Region() + "/keyRings/mixedk8s/cryptoKeys/cluster"
		}
		if _, err := e.cloud.EnsureSecret(ctx, "kms", "seed", []byte("s3cret")); err != nil {
			t.Fatal(err)
		}
		got, ok := e.srv.SecretKMSKeys("mixedk8s-kms-seed")
		want := map[string]string{"automatic": ""}
		if withKey {
			want = map[string]string{e.srv.Region(): key}
		}
		if !ok || len(got) != len(want) || got[e.srv.Region()] != want[e.srv.Region()] || got["automatic"] != want["automatic"] {
			t.Errorf("with key %v: secret replicas = %v, want %v", withKey, got, want)
		}
		nw, err := e.cloud.EnsureNetwork(ctx, netReq("kms"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.cloud.EnsureInstance(ctx, linuxReq("kms", "kms-cp-0", nw)); err != nil {
			t.Fatal(err)
		}
		insts := e.srv.Instances()
		wantDisk := ""
		if withKey {
			wantDisk = key + "/cryptoKeyVersions/1"
		}
		if len(insts) != 1 || insts[0].DiskKMSKey != wantDisk {
			t.Errorf("with key %v: instances = %+v, want one whose boot disk key is %q", withKey, insts, wantDisk)
		}
	}
}

// A key outside the region is refused by Secret Manager (a replica's key
// lives in its location) and by Compute (a disk's key is of its region or
// global), each error saying what to change.
func TestKMSKeyOfAnotherLocationIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, func(c *gcp.Config) {
		c.KMSKeyName = "projects/keys-prod/locations/asia-east1/keyRings/mixedk8s/cryptoKeys/cluster"
	})
	_, err := e.cloud.EnsureSecret(ctx, "kms", "seed", []byte("s3cret"))
	if clouds.KindOf(err) != clouds.KindInvalid || !strings.Contains(err.Error(), "gcp.kms_key_name") || !strings.Contains(err.Error(), "asia-east1") {
		t.Fatalf("EnsureSecret error = %v (kind %v), want invalid, naming the location and gcp.kms_key_name", err, clouds.KindOf(err))
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the secret: %v", err)
	}
	nw, err := e.cloud.EnsureNetwork(ctx, netReq("kms"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.cloud.EnsureInstance(ctx, linuxReq("kms", "kms-cp-0", nw))
	if clouds.KindOf(err) != clouds.KindInvalid || !strings.Contains(err.Error(), "diskEncryptionKey.kmsKeyName") || !strings.Contains(err.Error(), "gcp.kms_key_name") {
		t.Errorf("EnsureInstance error = %v (kind %v), want invalid, naming diskEncryptionKey.kmsKeyName", err, clouds.KindOf(err))
	}
	if n := len(e.srv.Instances()); n != 0 {
		t.Errorf("%d instances exist, want none", n)
	}
}
