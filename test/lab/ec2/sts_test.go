package ec2_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	lab "github.com/mixedk8s/mixedk8s/test/lab/ec2"
)

func stsClient(t *testing.T, s *lab.Server, creds aws.CredentialsProvider, endpoint string) *sts.Client {
	return sts.New(sts.Options{Region: s.Region(), BaseEndpoint: aws.String(endpoint), HTTPClient: httpClient(t, s), Credentials: creds})
}

func TestAssumeRoleRules(t *testing.T) {
	t.Parallel()
	s := start(t, lab.Options{})
	roleARN, err := s.CreateRole(lab.Role{Name: "deployer", ExternalID: "ext-123", MaxSessionDuration: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	open, err := s.CreateRole(lab.Role{Name: "/ops/reader"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:iam::123456789012:role/ops/reader"; open != want {
		t.Errorf("role ARN with a path = %s, want %s", open, want)
	}
	c := stsClient(t, s, credentials.NewStaticCredentialsProvider(keyID, secret, ""), s.URL())
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		in       sts.AssumeRoleInput
		code     string
		messages []string
	}{
		{"short ARN", sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::1:r")}, "ValidationError", []string{"roleArn", "length between 20 and 2048"}},
		{"not an ARN", sts.AssumeRoleInput{RoleArn: aws.String("deployer-role-in-prod-account")}, "ValidationError", []string{"Request ARN is invalid"}},
		{"unknown role", sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/nobody")}, "AccessDenied", []string{"not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/nobody"}},
		{"external ID missing", sts.AssumeRoleInput{RoleArn: aws.String(roleARN)}, "AccessDenied", []string{lab.UserARN}},
		{"external ID wrong", sts.AssumeRoleInput{RoleArn: aws.String(roleARN), ExternalId: aws.String("ext-999")}, "AccessDenied", []string{"sts:AssumeRole"}},
		{"external ID malformed", sts.AssumeRoleInput{RoleArn: aws.String(roleARN), ExternalId: aws.String("ext 123")}, "ValidationError", []string{"externalId"}},
		{"session name malformed", sts.AssumeRoleInput{RoleArn: aws.String(roleARN), ExternalId: aws.String("ext-123"), RoleSessionName: aws.String("a b")}, "ValidationError", []string{"roleSessionName"}},
		{"duration below 900", sts.AssumeRoleInput{RoleArn: aws.String(roleARN), ExternalId: aws.String("ext-123"), DurationSeconds: aws.Int32(899)}, "ValidationError", []string{"greater than or equal to 900"}},
		{"duration above 43200", sts.AssumeRoleInput{RoleArn: aws.String(roleARN), ExternalId: aws.String("ext-123"), DurationSeconds: aws.Int32(43201)}, "ValidationError", []string{"less than or equal to 43200"}},
		{"duration above the role's maximum", sts.AssumeRoleInput{RoleArn: aws.String(roleARN), ExternalId: aws.String("ext-123"), DurationSeconds: aws.Int32(3 * 3600)}, "ValidationError", []string{"MaxSessionDuration"}},
		{"right external ID", sts.AssumeRoleInput{RoleArn: aws.String(roleARN), ExternalId: aws.String("ext-123"), DurationSeconds: aws.Int32(7200)}, "", nil},
		{"no external ID needed", sts.AssumeRoleInput{RoleArn: aws.String(open)}, "", nil},
	} {
		if tc.in.RoleSessionName == nil {
			tc.in.RoleSessionName = aws.String("acc")
		}
		out, err := c.AssumeRole(ctx, &tc.in)
		if code(err) != tc.code {
			t.Errorf("%s: error %v, want code %q", tc.name, err, tc.code)
			continue
		}
		for _, m := range tc.messages {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %v does not say %q", tc.name, err, m)
			}
		}
		if err == nil && !strings.HasPrefix(aws.ToString(out.Credentials.AccessKeyId), "ASIA") {
			t.Errorf("%s: access key %s is not a temporary (ASIA) key", tc.name, aws.ToString(out.Credentials.AccessKeyId))
		}
	}
}

func TestTemporaryCredentialsAreAcceptedUntilTheyExpire(t *testing.T) {
	t.Parallel()
	s := start(t, lab.Options{})
	roleARN, err := s.CreateRole(lab.Role{Name: "deployer", MaxSessionDuration: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := stsClient(t, s, credentials.NewStaticCredentialsProvider(keyID, secret, ""), s.URL()).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("acc"),
	})
	if err != nil {
		t.Fatal(err)
	}
	cr := out.Credentials
	if want := time.Now().Add(time.Hour); cr.Expiration.Before(want.Add(-time.Minute)) || cr.Expiration.After(want.Add(time.Minute)) {
		t.Errorf("expiration %s, want about an hour from now (DurationSeconds defaults to 3600)", cr.Expiration)
	}
	session := credentials.NewStaticCredentialsProvider(aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken))
	assumed := "arn:aws:sts::123456789012:assumed-role/deployer/acc"

	// Given the session's credentials, when EC2 and STS are called, then
	// they answer as the assumed role.
	ec2c, ssmc := clientsWith(t, s, session)
	if _, err := ec2c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatalf("EC2 with the session's credentials: %v", err)
	}
	id, err := stsClient(t, s, session, s.URL()).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != assumed || !strings.HasPrefix(aws.ToString(id.UserId), "AROA") {
		t.Errorf("GetCallerIdentity as the session = %+v, %v; want %s with an AROA user ID", id, err, assumed)
	}
	if n := s.CallsBy()[assumed]["DescribeVpcs"]; n != 1 {
		t.Errorf("DescribeVpcs by %s: %d calls, want 1 (calls by principal: %v)", assumed, n, s.CallsBy())
	}
	// A chained session may not ask for more than an hour.
	if _, err := stsClient(t, s, session, s.URL()).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("chained"), DurationSeconds: aws.Int32(3601),
	}); code(err) != "ValidationError" || !strings.Contains(err.Error(), "role chaining") {
		t.Errorf("role chaining above one hour: %v, want ValidationError naming role chaining", err)
	}

	// The key without its session token is not the session.
	noToken := credentials.NewStaticCredentialsProvider(aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), "")
	bad, _ := clientsWith(t, s, noToken)
	if _, err := bad.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); code(err) != "AuthFailure" {
		t.Errorf("EC2 with the session key but no token: %v, want AuthFailure", err)
	}

	// Once expired, each service refuses them with its own code.
	s.ExpireSessions()
	if _, err := ec2c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); code(err) != "RequestExpired" {
		t.Errorf("EC2 with expired credentials: %v, want RequestExpired", err)
	}
	if _, err := ssmc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/ami-windows-latest/Windows_Server-2022-English-Core-Base")}); code(err) != "ExpiredTokenException" {
		t.Errorf("SSM with expired credentials: %v, want ExpiredTokenException", err)
	}
	if _, err := stsClient(t, s, session, s.URL()).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); code(err) != "ExpiredTokenException" {
		t.Errorf("STS with expired credentials: %v, want ExpiredTokenException", err)
	}
}

func TestServiceURLsAnswerTheirServiceOnly(t *testing.T) {
	t.Parallel()
	s := start(t, lab.Options{})
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider(keyID, secret, "")
	if _, err := stsClient(t, s, creds, s.ServiceURL("sts")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("STS at its own endpoint: %v", err)
	}
	wrong := ec2.New(ec2.Options{Region: s.Region(), BaseEndpoint: aws.String(s.ServiceURL("sts")), HTTPClient: httpClient(t, s), Credentials: creds})
	if _, err := wrong.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); code(err) != "InvalidAction" {
		t.Errorf("EC2 sent to the STS endpoint: %v, want InvalidAction", err)
	}
	got := s.PathCalls()
	if got["sts"]["sts"] != 1 || got["sts"]["ec2"] != 1 {
		t.Errorf("calls by path = %v, want one STS and one refused EC2 call at /sts", got)
	}
}

func clientsWith(t *testing.T, s *lab.Server, creds aws.CredentialsProvider) (*ec2.Client, *ssm.Client) {
	hc := httpClient(t, s)
	return ec2.New(ec2.Options{Region: s.Region(), BaseEndpoint: aws.String(s.URL()), HTTPClient: hc, Credentials: creds}),
		ssm.New(ssm.Options{Region: s.Region(), BaseEndpoint: aws.String(s.URL()), HTTPClient: hc, Credentials: creds})
}
