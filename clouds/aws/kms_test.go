package aws

import (
	"context"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/clouds"
	lab "github.com/mixedk8s/mixedk8s/test/lab/ec2"
)

// A customer managed key, named each way KMS allows, lands on the
// cluster's SSM parameters and its instances' root volumes; without one
// they get the AWS managed keys.
func TestKMSKeyEncryptsSecretsAndRootVolumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	keyARN := "arn:aws:kms:us-east-1:" + lab.AccountID + ":key/" + lab.LabKMSKey.ID
	for _, tc := range []struct{ name, key, wantSSM, wantEBS string }{
		{"no key", "", lab.DefaultSSMKey, lab.DefaultEBSKey},
		{"key ID", lab.LabKMSKey.ID, keyARN, keyARN},
		{"key ARN", keyARN, keyARN, keyARN},
		{"alias", "alias/mixedk8s-lab", keyARN, keyARN},
		{"alias ARN", "arn:aws:kms:us-east-1:" + lab.AccountID + ":alias/mixedk8s-lab", keyARN, keyARN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, func(c *Config) { c.KMSKeyID = tc.key })
			if _, err := f.cloud.EnsureSecret(ctx, "kms", "seed", []byte("s3cret")); err != nil {
				t.Fatal(err)
			}
			n, err := f.cloud.EnsureNetwork(ctx, netReq("kms"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.cloud.EnsureInstance(ctx, instReq("kms", "kms-cp-0", "control-plane", "control-plane", "linux", n)); err != nil {
				t.Fatal(err)
			}
			params := f.srv.Parameters()
			if len(params) != 1 || params[0].Type != "SecureString" || params[0].KeyID != tc.wantSSM {
				t.Errorf("parameters = %+v, want one SecureString under %s", params, tc.wantSSM)
			}
			insts := f.srv.Instances()
			if len(insts) != 1 || !insts[0].RootEncrypted || insts[0].RootKMSKeyID != tc.wantEBS {
				t.Errorf("instances = %+v, want one with its root volume encrypted under %s", insts, tc.wantEBS)
			}
		})
	}
}

// A key the account does not have: SSM refuses the parameter at once
// (InvalidKeyId), EC2 answers RunInstances and the instance then
// terminates at launch; both errors name aws.kms_key_id and are not retried.
func TestUnknownKMSKeyIsReportedWithItsField(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	missing := "arn:aws:kms:us-east-1:" + lab.AccountID + ":key/11111111-2222-3333-4444-555555555555"
	f := setup(t, func(c *Config) { c.KMSKeyID = missing })

	_, err := f.cloud.EnsureSecret(ctx, "kms", "seed", []byte("s3cret"))
	if clouds.KindOf(err) != clouds.KindInvalid || !strings.Contains(err.Error(), "InvalidKeyId") || !strings.Contains(err.Error(), "aws.kms_key_id") {
		t.Fatalf("EnsureSecret error = %v (kind %v), want an invalid InvalidKeyId naming aws.kms_key_id", err, clouds.KindOf(err))
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the secret: %v", err)
	}
	if p := f.srv.Parameters(); len(p) != 0 {
		t.Errorf("parameters = %+v, want none", p)
	}

	n, err := f.cloud.EnsureNetwork(ctx, netReq("kms"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.cloud.EnsureInstance(ctx, instReq("kms", "kms-cp-0", "control-plane", "control-plane", "linux", n))
	if clouds.KindOf(err) != clouds.KindInvalid || !strings.Contains(err.Error(), "Client.InternalError") || !strings.Contains(err.Error(), "aws.kms_key_id") {
		t.Fatalf("EnsureInstance error = %v (kind %v), want an invalid Client.InternalError naming aws.kms_key_id", err, clouds.KindOf(err))
	}
	insts := f.srv.Instances()
	if len(insts) != 1 || insts[0].State != "terminated" || insts[0].StateReason.Code != "Client.InternalError" {
		t.Errorf("instances = %+v, want one terminated at launch", insts)
	}
}
