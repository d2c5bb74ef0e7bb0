package aws

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	lab "github.com/mixedk8s/mixedk8s/test/lab/ec2"
)

// TestRegionComesFromTheSDKChain is not parallel: it sets the environment.
func TestRegionComesFromTheSDKChain(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	if err := os.WriteFile(conf, []byte("[profile platform]\nregion = ap-south-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		profile string
		want    string
	}{
		{"AWS_REGION", map[string]string{"AWS_REGION": "eu-west-3"}, "", "eu-west-3"},
		{"AWS_DEFAULT_REGION", map[string]string{"AWS_DEFAULT_REGION": "eu-north-1"}, "", "eu-north-1"},
		{"AWS_REGION wins over AWS_DEFAULT_REGION", map[string]string{"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "eu-north-1"}, "", "eu-west-3"},
		{"the profile's region", map[string]string{"AWS_CONFIG_FILE": conf}, "platform", "ap-south-2"},
		{"AWS_PROFILE's region", map[string]string{"AWS_CONFIG_FILE": conf, "AWS_PROFILE": "platform"}, "", "ap-south-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_REGION", "")
			t.Setenv("AWS_DEFAULT_REGION", "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := New(context.Background(), Config{Profile: tc.profile, AccessKeyID: "AKIDTEST", SecretAccessKey: "test-secret"})
			if err != nil {
				t.Fatal(err)
			}
			if c.Region() != tc.want {
				t.Errorf("region = %q, want %q", c.Region(), tc.want)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		t.Setenv("AWS_REGION", "")
		t.Setenv("AWS_DEFAULT_REGION", "")
		_, err := New(context.Background(), Config{AccessKeyID: "AKIDTEST", SecretAccessKey: "test-secret"})
		if err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
			t.Errorf("no region anywhere: %v, want an error naming AWS_REGION", err)
		}
	})
}

func TestEachServiceGoesToItsEndpoint(t *testing.T) {
	t.Parallel()
	// Given EC2 and ELB on endpoints of their own and SSM left to the
	// shared one, when each client calls, then each call arrives there.
	f := setup(t, func(c *Config) {
		c.Endpoints = Endpoints{EC2: c.Endpoint + "/ec2", ELBv2: c.Endpoint + "/elasticloadbalancing"}
	})
	ctx := context.Background()
	if _, err := f.cloud.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cloud.elb.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cloud.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/ami-windows-latest/Windows_Server-2022-English-Core-Base")}); err != nil {
		t.Fatal(err)
	}
	got := f.srv.PathCalls()
	if got["ec2"]["ec2"] != 1 || got["elasticloadbalancing"]["elasticloadbalancing"] != 1 || got[""]["ssm"] != 1 || len(got) != 3 {
		t.Errorf("calls by endpoint path and service = %v; want EC2 at /ec2, ELB at /elasticloadbalancing, SSM at the shared endpoint", got)
	}
}

func TestAssumedRoleMakesEveryCall(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	roleARN, err := f.srv.CreateRole(lab.Role{Name: "mixedk8s-deployer", ExternalID: "platform-7"})
	if err != nil {
		t.Fatal(err)
	}
	base := func() Config {
		return Config{
			Region: f.srv.Region(), Endpoint: f.srv.URL(), Endpoints: Endpoints{STS: f.srv.ServiceURL("sts")}, CABundle: f.srv.CACertPEM(),
			AccessKeyID: "AKIDTEST", SecretAccessKey: "test-secret",
			AssumeRole: &AssumeRole{RoleARN: roleARN, SessionName: "acc", ExternalID: "platform-7", Duration: 20 * time.Minute},
		}
	}
	ctx := context.Background()
	const assumed = "arn:aws:sts::123456789012:assumed-role/mixedk8s-deployer/acc"

	id, err := CheckCredentials(ctx, base())
	if err != nil || id.ARN != assumed || id.Account != lab.AccountID {
		t.Fatalf("CheckCredentials = %+v, %v; want %s", id, err, assumed)
	}
	c, err := New(ctx, base())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatal(err)
	}
	by := f.srv.CallsBy()
	if by[assumed]["DescribeVpcs"] != 1 || by[lab.UserARN]["DescribeVpcs"] != 0 || by[lab.UserARN]["AssumeRole"] == 0 {
		t.Errorf("calls by principal = %v; want AssumeRole by the user, DescribeVpcs by the session only", by)
	}

	// A wrong external ID fails the check, naming the chain and the step, with no secret.
	wrong := base()
	wrong.AssumeRole.ExternalID = "platform-8"
	_, err = CheckCredentials(ctx, wrong)
	var ce *CredentialsError
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Step, "assume role "+roleARN) {
		t.Fatalf("wrong external ID: %v, want a CredentialsError at the AssumeRole step", err)
	}
	for _, want := range []string{"AccessDenied", "static keys", "external ID", "StaticCredentials"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for _, secret := range []string{"test-secret", "platform-8", "platform-7"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q shows %q", err, secret)
		}
	}

	// Keys the emulator does not know fail at GetCallerIdentity.
	unknown := base()
	unknown.AssumeRole = nil
	unknown.AccessKeyID = "AKIDNOBODY"
	if _, err := CheckCredentials(ctx, unknown); !errors.As(err, &ce) || ce.Step != "call STS GetCallerIdentity" || !strings.Contains(err.Error(), "InvalidClientTokenId") {
		t.Errorf("unknown keys: %v, want InvalidClientTokenId at GetCallerIdentity", err)
	}
}
