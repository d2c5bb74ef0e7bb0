package ec2_test

import (
	"context"
	"net/url"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	lab "github.com/mixedk8s/mixedk8s/test/lab/ec2"
)

// The key rules each cloud call is held to: SSM resolves every form of
// KeyId and refuses an unknown key; a key ARN of another region or account
// names no key; EBS wants Encrypted with KmsKeyId.
func TestKMSKeysAsSSMAndEBSTakeThem(t *testing.T) {
	t.Parallel()
	s := start(t, lab.Options{})
	_, m := clients(t, s, keyID, secret)
	ctx := context.Background()
	arn := s.KeyARN(lab.LabKMSKey)
	for i, tc := range []struct{ keyID, want, code string }{
		{"", lab.DefaultSSMKey, ""},
		{lab.LabKMSKey.ID, arn, ""},
		{arn, arn, ""},
		{"alias/mixedk8s-lab", arn, ""},
		{"arn:aws:kms:" + s.Region() + ":" + lab.AccountID + ":alias/mixedk8s-lab", arn, ""},
		{"alias/other", "", "InvalidKeyId"},
		{"arn:aws:kms:eu-west-1:" + lab.AccountID + ":key/" + lab.LabKMSKey.ID, "", "InvalidKeyId"},
		{"arn:aws:kms:" + s.Region() + ":210987654321:key/" + lab.LabKMSKey.ID, "", "InvalidKeyId"},
	} {
		name := "/mixedk8s/kms/p" + string(rune('a'+i))
		in := &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("v"), Type: ssmtypes.ParameterTypeSecureString}
		if tc.keyID != "" {
			in.KeyId = aws.String(tc.keyID)
		}
		_, err := m.PutParameter(ctx, in)
		if code(err) != tc.code {
			t.Errorf("KeyId %q: error %v, want code %q", tc.keyID, err, tc.code)
			continue
		}
		if tc.code != "" {
			continue
		}
		var got string
		for _, p := range s.Parameters() {
			if p.Name == name {
				got = p.KeyID
			}
		}
		if got != tc.want {
			t.Errorf("KeyId %q: parameter key %q, want %q", tc.keyID, got, tc.want)
		}
	}

	raw := start(t, lab.Options{Credentials: map[string]string{}})
	ami, _ := raw.ImageID("/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id")
	_, body := post(t, raw, url.Values{"Action": {"CreateVpc"}, "CidrBlock": {"10.1.0.0/16"}})
	vpc := regexp.MustCompile(`<vpcId>(vpc-[0-9a-f]+)</vpcId>`).FindStringSubmatch(body)
	if vpc == nil {
		t.Fatalf("CreateVpc: %s", body)
	}
	_, body = post(t, raw, url.Values{"Action": {"CreateSubnet"}, "VpcId": {vpc[1]}, "CidrBlock": {"10.1.0.0/24"}})
	subnet := regexp.MustCompile(`<subnetId>(subnet-[0-9a-f]+)</subnetId>`).FindStringSubmatch(body)
	if subnet == nil {
		t.Fatalf("CreateSubnet: %s", body)
	}
	status, body := post(t, raw, url.Values{"Action": {"RunInstances"}, "ImageId": {ami}, "InstanceType": {"m5.large"}, "SubnetId": {subnet[1]}, "MinCount": {"1"}, "MaxCount": {"1"},
		"BlockDeviceMapping.1.DeviceName": {"/dev/sda1"}, "BlockDeviceMapping.1.Ebs.KmsKeyId": {arn}})
	if status != 400 {
		t.Errorf("KmsKeyId without Encrypted: status %d, want 400", status)
	}
	contains(t, body, "<Code>InvalidParameterDependency</Code>")
	if n := len(raw.Instances()); n != 0 {
		t.Errorf("%d instances, want none", n)
	}
}
