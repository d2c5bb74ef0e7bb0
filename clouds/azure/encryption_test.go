package azure

import (
	"context"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

// With azure.disk_encryption_set_id every OS disk is encrypted through the
// set; without, with platform-managed keys.
func TestDiskEncryptionSetEncryptsOSDisks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, withSet := range []bool{false, true} {
		var des string
		f := setup(t, arm.Options{}, func(c *Config) {
			if withSet {
				des = "/subscriptions/" + c.SubscriptionID + "/resourceGroups/" + arm.LabKeysGroup + "/providers/Microsoft.Compute/diskEncryptionSets/" + arm.LabDiskEncryptionSet
				c.DiskEncryptionSetID = des
			}
		})
		n, err := f.cloud.EnsureNetwork(ctx, netReq("demo"))
		if err != nil {
			t.Fatal(err)
		}
		for _, os := range []string{"linux", "windows"} {
			if _, err := f.cloud.EnsureInstance(ctx, instReq(t, "demo", "demo-"+os+"-0", "p", clouds.RoleWorker, os, n)); err != nil {
				t.Fatal(err)
			}
		}
		vms := f.srv.VMs()
		if len(vms) != 2 {
			t.Fatalf("VMs = %+v, want 2", vms)
		}
		for _, vm := range vms {
			if vm.DiskEncryptionSetID != des {
				t.Errorf("with set %v: VM %s's OS disk encryption set = %q, want %q", withSet, vm.Name, vm.DiskEncryptionSetID, des)
			}
		}
	}
}

// A set that does not exist, or an ID that is not a set's, is refused by
// ARM; the error names azure.disk_encryption_set_id and no VM is made.
func TestDiskEncryptionSetErrorsNameTheField(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct{ name, id, code string }{
		{"missing set", "/subscriptions/{sub}/resourceGroups/keys/providers/Microsoft.Compute/diskEncryptionSets/nope", "BadRequest"},
		{"a vault key URL", "https://vault.vault.azure.net/keys/k/1", "LinkedInvalidPropertyId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, arm.Options{}, func(c *Config) { c.DiskEncryptionSetID = strings.ReplaceAll(tc.id, "{sub}", c.SubscriptionID) })
			n, err := f.cloud.EnsureNetwork(ctx, netReq("demo"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.cloud.EnsureInstance(ctx, instReq(t, "demo", "demo-cp-0", clouds.ControlPlanePool, clouds.RoleControlPlane, "linux", n))
			if clouds.KindOf(err) != clouds.KindInvalid || !strings.Contains(err.Error(), tc.code) || !strings.Contains(err.Error(), "azure.disk_encryption_set_id") {
				t.Errorf("EnsureInstance error = %v (kind %v), want invalid %s naming azure.disk_encryption_set_id", err, clouds.KindOf(err), tc.code)
			}
			if vms := f.srv.VMs(); len(vms) != 0 {
				t.Errorf("VMs = %+v, want none", vms)
			}
		})
	}
}
