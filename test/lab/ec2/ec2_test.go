package ec2_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	lab "github.com/mixedk8s/mixedk8s/test/lab/ec2"
)

func TestMain(m *testing.M) {
	// The SDK must never look for credentials or endpoints outside the test.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Exit(m.Run())
}

const (
	keyID  = "AKIDLABEXAMPLE"
	secret = "lab-secret"
)

func start(t *testing.T, opts lab.Options) *lab.Server {
	t.Helper()
	if opts.Credentials == nil {
		opts.Credentials = map[string]string{keyID: secret}
	}
	if opts.PendingDelay == 0 {
		opts.PendingDelay = 20 * time.Millisecond
	}
	if opts.ShuttingDownDelay == 0 {
		opts.ShuttingDownDelay = 20 * time.Millisecond
	}
	s, err := lab.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func httpClient(t *testing.T, s *lab.Server) *http.Client {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM()) {
		t.Fatal("CA PEM does not parse")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func clients(t *testing.T, s *lab.Server, key, sec string) (*ec2.Client, *ssm.Client) {
	hc := httpClient(t, s)
	creds := credentials.NewStaticCredentialsProvider(key, sec, "")
	e := ec2.New(ec2.Options{Region: s.Region(), BaseEndpoint: aws.String(s.URL()), HTTPClient: hc, Credentials: creds})
	m := ssm.New(ssm.Options{Region: s.Region(), BaseEndpoint: aws.String(s.URL()), HTTPClient: hc, Credentials: creds})
	return e, m
}

// post sends a raw, unsigned Query request (the server accepts it when no
// credentials are configured) and returns status and body.
func post(t *testing.T, s *lab.Server, form url.Values) (int, string) {
	t.Helper()
	form.Set("Version", lab.APIVersion)
	resp, err := httpClient(t, s).PostForm(s.URL(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func contains(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("reply lacks %q:\n%s", w, body)
		}
	}
}

func TestRepliesHaveEC2Shape(t *testing.T) {
	t.Parallel()
	s := start(t, lab.Options{Credentials: map[string]string{}})
	status, body := post(t, s, url.Values{"Action": {"CreateVpc"}, "CidrBlock": {"10.1.0.0/16"},
		"TagSpecification.1.ResourceType": {"vpc"}, "TagSpecification.1.Tag.1.Key": {"Name"}, "TagSpecification.1.Tag.1.Value": {"demo-vpc"}})
	if status != 200 {
		t.Fatalf("CreateVpc status %d: %s", status, body)
	}
	contains(t, body, `<?xml version="1.0" encoding="UTF-8"?>`, `<CreateVpcResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">`,
		"<requestId>", "<vpc><vpcId>vpc-", "<state>available</state>", "<cidrBlock>10.1.0.0/16</cidrBlock>",
		"<tagSet><item><key>Name</key><value>demo-vpc</value></item></tagSet>", "</CreateVpcResponse>")

	status, body = post(t, s, url.Values{"Action": {"DeleteVpc"}, "VpcId": {"vpc-0123456789abcdef0"}})
	if status != 400 {
		t.Errorf("DeleteVpc of a missing VPC: status %d, want 400", status)
	}
	contains(t, body, "<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code><Message>The vpc ID 'vpc-0123456789abcdef0' does not exist</Message></Error></Errors><RequestID>")

	s.Inject("DescribeVpcs", 1, lab.ErrRequestLimitExceeded)
	status, body = post(t, s, url.Values{"Action": {"DescribeVpcs"}})
	if status != 503 {
		t.Errorf("throttled DescribeVpcs: status %d, want 503", status)
	}
	contains(t, body, "<Code>RequestLimitExceeded</Code>")
	status, body = post(t, s, url.Values{"Action": {"DescribeVpcs"}})
	if status != 200 {
		t.Errorf("second DescribeVpcs: status %d, want 200 (the fault was for one call)", status)
	}
	contains(t, body, "<DescribeVpcsResponse xmlns=", "<vpcSet><item><vpcId>vpc-")

	status, body = post(t, s, url.Values{"Action": {"DescribeVpcs"}, "Filter.1.Name": {"bogus"}, "Filter.1.Value.1": {"x"}})
	if status != 400 || !strings.Contains(body, "<Code>InvalidParameterValue</Code>") {
		t.Errorf("unknown filter: status %d body %s, want 400 InvalidParameterValue", status, body)
	}
	status, body = post(t, s, url.Values{"Action": {"FlyToTheMoon"}})
	if status != 400 || !strings.Contains(body, "<Code>InvalidAction</Code>") {
		t.Errorf("unknown action: status %d body %s", status, body)
	}
}

// An existing network's IDs are answered as EC2 answers them: unknown IDs
// NotFound, IDs not of the type's form Malformed, before any lookup.
func TestDescribeByIDNotFoundAndMalformed(t *testing.T) {
	t.Parallel()
	s := start(t, lab.Options{Credentials: map[string]string{}})
	for _, tc := range []struct {
		action, param, id, want string
	}{
		{"DescribeVpcs", "VpcId", "vpc-0123456789abcdef0", "<Code>InvalidVpcID.NotFound</Code><Message>The vpc ID 'vpc-0123456789abcdef0' does not exist</Message>"},
		{"DescribeVpcs", "VpcId", "vpc-0123abcd", "<Code>InvalidVpcID.NotFound</Code>"},
		{"DescribeVpcs", "VpcId", "vpc-012345678", "<Code>InvalidVpcID.Malformed</Code><Message>The vpc ID vpc-012345678 is malformed</Message>"},
		{"DescribeVpcs", "VpcId", "prod-vpc", "<Code>InvalidVpcID.Malformed</Code>"},
		{"DescribeSubnets", "SubnetId", "subnet-0123456789abcdef0", "<Code>InvalidSubnetID.NotFound</Code><Message>The subnet ID 'subnet-0123456789abcdef0' does not exist</Message>"},
		{"DescribeSubnets", "SubnetId", "subnet-0123456789ABCDEF0", "<Code>InvalidSubnetID.Malformed</Code>"},
		{"DescribeSubnets", "SubnetId", "10.0.1.0/24", "<Code>InvalidSubnetID.Malformed</Code>"},
	} {
		status, body := post(t, s, url.Values{"Action": {tc.action}, tc.param + ".1": {tc.id}})
		if status != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s: status %d body %s, want 400 with %s", tc.action, tc.id, status, body, tc.want)
		}
	}
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestSigV4IsChecked(t *testing.T) {
	t.Parallel()
	s := start(t, lab.Options{})
	good, goodSSM := clients(t, s, keyID, secret)
	ctx := context.Background()
	if _, err := good.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatalf("a correctly signed request failed: %v", err)
	}
	if _, err := goodSSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/ami-windows-latest/Windows_Server-2022-English-Core-Base")}); err != nil {
		t.Fatalf("a correctly signed SSM request failed: %v", err)
	}
	for _, tc := range []struct{ key, sec, ec2Code, ssmCode string }{
		{keyID, "wrong", "AuthFailure", "InvalidSignatureException"},
		{"AKIDUNKNOWN", secret, "AuthFailure", "UnrecognizedClientException"},
	} {
		bad, badSSM := clients(t, s, tc.key, tc.sec)
		_, err := bad.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
		if code(err) != tc.ec2Code {
			t.Errorf("EC2 with key %s/%s: error %v, want %s", tc.key, tc.sec, err, tc.ec2Code)
		}
		_, err = badSSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/ami-windows-latest/Windows_Server-2022-English-Core-Base")})
		if code(err) != tc.ssmCode {
			t.Errorf("SSM with key %s/%s: error %v, want %s", tc.key, tc.sec, err, tc.ssmCode)
		}
	}
}

// network builds a VPC with one subnet and a security group through the SDK.
func network(t *testing.T, c *ec2.Client) (vpcID, subnetID, sgID string) {
	t.Helper()
	ctx := context.Background()
	v, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.Vpc.VpcId, CidrBlock: aws.String("10.0.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: v.Vpc.VpcId, GroupName: aws.String("g"), Description: aws.String("g")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(v.Vpc.VpcId), aws.ToString(sn.Subnet.SubnetId), aws.ToString(sg.GroupId)
}

func TestRunInstancesClientToken(t *testing.T) {
	t.Parallel()
	s := start(t, lab.Options{})
	c, m := clients(t, s, keyID, secret)
	ctx := context.Background()
	_, subnet, sg := network(t, c)
	ami, err := m.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id")})
	if err != nil {
		t.Fatal(err)
	}
	in := &ec2.RunInstancesInput{ImageId: ami.Parameter.Value, InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(subnet), SecurityGroupIds: []string{sg}, ClientToken: aws.String("tok-1"), UserData: aws.String("aGVsbG8=")}
	first, err := c.RunInstances(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if st := first.Instances[0].State.Name; st != types.InstanceStateNamePending {
		t.Errorf("new instance is %s, want pending", st)
	}
	again, err := c.RunInstances(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(again.ReservationId) != aws.ToString(first.ReservationId) || aws.ToString(again.Instances[0].InstanceId) != aws.ToString(first.Instances[0].InstanceId) {
		t.Errorf("same token and parameters gave reservation %s/%s, want %s/%s", aws.ToString(again.ReservationId), aws.ToString(again.Instances[0].InstanceId),
			aws.ToString(first.ReservationId), aws.ToString(first.Instances[0].InstanceId))
	}
	if n := len(s.Instances()); n != 1 {
		t.Errorf("%d instances exist, want 1", n)
	}
	changed := *in
	changed.InstanceType = types.InstanceTypeT3Medium
	if _, err := c.RunInstances(ctx, &changed); code(err) != "IdempotentParameterMismatch" {
		t.Errorf("same token, other parameters: error %v, want IdempotentParameterMismatch", err)
	}
	long := *in
	long.ClientToken = aws.String(strings.Repeat("x", 65))
	if _, err := c.RunInstances(ctx, &long); code(err) != "InvalidParameterValue" {
		t.Errorf("65-character token: error %v, want InvalidParameterValue", err)
	}
}

func TestInstanceLifecycle(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var running, terminated []lab.Instance
	s := start(t, lab.Options{
		TerminatedVisible: 300 * time.Millisecond,
		OnRunning:         func(in lab.Instance) { mu.Lock(); running = append(running, in); mu.Unlock() },
		OnTerminated:      func(in lab.Instance) { mu.Lock(); terminated = append(terminated, in); mu.Unlock() },
	})
	c, _ := clients(t, s, keyID, secret)
	ctx := context.Background()
	vpc, subnet, sg := network(t, c)
	ami, _ := s.ImageID("/aws/service/ami-windows-latest/Windows_Server-2025-English-Full-Base")
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), InstanceType: "m8i.xlarge", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(subnet), SecurityGroupIds: []string{sg}, UserData: aws.String("PHBvd2Vyc2hlbGw+"),
		CpuOptions: &types.CpuOptionsRequest{NestedVirtualization: types.NestedVirtualizationSpecificationEnabled},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{
			{Key: aws.String(lab.TagCluster), Value: aws.String("demo")}, {Key: aws.String("Name"), Value: aws.String("demo-win-0")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	state := func() types.InstanceStateName {
		d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		return d.Reservations[0].Instances[0].State.Name
	}
	waitFor := func(want types.InstanceStateName) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); state() != want; {
			if time.Now().After(deadline) {
				t.Fatalf("instance never became %s", want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(types.InstanceStateNameRunning)
	d, _ := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	got := d.Reservations[0].Instances[0]
	if got.Platform != "windows" || // EC2 writes lowercase, unlike the SDK enum
		got.CpuOptions.NestedVirtualization != types.NestedVirtualizationSpecificationEnabled ||
		!strings.HasPrefix(aws.ToString(got.PrivateIpAddress), "10.0.1.") || aws.ToString(got.VpcId) != vpc {
		t.Errorf("running instance: platform %q nested %q ip %q vpc %q", got.Platform, got.CpuOptions.NestedVirtualization, aws.ToString(got.PrivateIpAddress), aws.ToString(got.VpcId))
	}
	mu.Lock()
	if len(running) != 1 || string(running[0].UserData) != "<powershell>" {
		t.Errorf("OnRunning saw %+v, want one instance with its decoded user data", running)
	}
	mu.Unlock()
	if _, err := c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(vpc)}); code(err) != "DependencyViolation" {
		t.Errorf("DeleteVpc in use: error %v, want DependencyViolation", err)
	}
	if _, err := c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(subnet)}); code(err) != "DependencyViolation" {
		t.Errorf("DeleteSubnet in use: error %v, want DependencyViolation", err)
	}
	if got := s.Objects("demo"); !slices.Equal(got, []string{"instance/" + id}) {
		t.Errorf("Objects(demo) = %v", got)
	}
	term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if st := term.TerminatingInstances[0]; st.CurrentState.Name != types.InstanceStateNameShuttingDown || st.PreviousState.Name != types.InstanceStateNameRunning {
		t.Errorf("terminate: %s -> %s, want running -> shutting-down", st.PreviousState.Name, st.CurrentState.Name)
	}
	waitFor(types.InstanceStateNameTerminated) // still visible once terminated, as on EC2
	if got := s.Objects("demo"); len(got) != 0 {
		t.Errorf("Objects(demo) after termination = %v, want none", got)
	}
	mu.Lock()
	if len(terminated) != 1 {
		t.Errorf("OnTerminated called %d times, want 1", len(terminated))
	}
	mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if code(err) == "InvalidInstanceID.NotFound" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("terminated instance never disappeared: %v", err)
		}
	}
	if _, err := c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(subnet)}); err != nil {
		t.Errorf("DeleteSubnet after termination: %v", err)
	}
}

func TestDescribeInstancesPagesAndFilters(t *testing.T) {
	t.Parallel()
	s := start(t, lab.Options{})
	c, _ := clients(t, s, keyID, secret)
	ctx := context.Background()
	_, subnet, _ := network(t, c)
	ami, _ := s.ImageID("/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id")
	for _, cl := range []string{"a", "b"} {
		_, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), InstanceType: "t3.micro", MinCount: aws.Int32(12), MaxCount: aws.Int32(12),
			SubnetId: aws.String(subnet), TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
				Tags: []types.Tag{{Key: aws.String(lab.TagCluster), Value: aws.String(cl)}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	s.ResetCalls()
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5),
		Filters: []types.Filter{{Name: aws.String("tag:" + lab.TagCluster), Values: []string{"a"}}, {Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}}}})
	seen := map[string]bool{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				if seen[aws.ToString(in.InstanceId)] {
					t.Errorf("instance %s listed twice", aws.ToString(in.InstanceId))
				}
				seen[aws.ToString(in.InstanceId)] = true
			}
		}
	}
	if len(seen) != 12 || s.Calls()["DescribeInstances"] != 3 {
		t.Errorf("listed %d instances in %d calls, want 12 in 3", len(seen), s.Calls()["DescribeInstances"])
	}
	if s.MutatingCalls() != 0 || s.ReadCalls() != 3 {
		t.Errorf("call log: %d mutating, %d read; want 0 and 3", s.MutatingCalls(), s.ReadCalls())
	}
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5), InstanceIds: []string{"i-1"}})
	if code(err) != "InvalidParameterCombination" {
		t.Errorf("MaxResults with InstanceIds: %v, want InvalidParameterCombination", err)
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0000000000000dead"}}); code(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("terminate unknown: %v, want InvalidInstanceID.NotFound", err)
	}
}

func TestInstanceTypesReportNestedVirtualization(t *testing.T) {
	t.Parallel()
	s := start(t, lab.Options{})
	c, _ := clients(t, s, keyID, secret)
	out, err := c.DescribeInstanceTypes(context.Background(), &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"m8i.xlarge", "m5.metal", "t3.micro"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, it := range out.InstanceTypes {
		nested := slices.Contains(it.ProcessorInfo.SupportedFeatures, types.SupportedAdditionalProcessorFeatureNestedVirtualization)
		got[string(it.InstanceType)] = map[bool]string{true: "nested", false: "-"}[nested] + map[bool]string{true: "+metal", false: ""}[aws.ToBool(it.BareMetal)]
	}
	want := map[string]string{"m8i.xlarge": "nested", "m5.metal": "-+metal", "t3.micro": "-"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	_, subnet, _ := network(t, c)
	ami, _ := s.ImageID("/aws/service/ami-windows-latest/Windows_Server-2022-English-Core-Base")
	_, err = c.RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: aws.String(ami), InstanceType: "t3.micro", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(subnet), CpuOptions: &types.CpuOptionsRequest{NestedVirtualization: types.NestedVirtualizationSpecificationEnabled}})
	if code(err) != "Unsupported" {
		t.Errorf("nested virtualisation on t3.micro: %v, want Unsupported", err)
	}
}

func TestSSMPublicParameters(t *testing.T) {
	t.Parallel()
	s := start(t, lab.Options{})
	c, m := clients(t, s, keyID, secret)
	ctx := context.Background()
	var names []string
	for _, v := range []string{"2019", "2022", "2025"} {
		for _, ed := range []string{"Core", "Full"} {
			names = append(names, "/aws/service/ami-windows-latest/Windows_Server-"+v+"-English-"+ed+"-Base")
		}
	}
	names = append(names, "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id")
	for _, n := range names {
		out, err := m.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(n)})
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		img, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(out.Parameter.Value)}})
		if err != nil || len(img.Images) != 1 {
			t.Errorf("%s -> %s: image not described: %v", n, aws.ToString(out.Parameter.Value), err)
			continue
		}
		if isWin := strings.Contains(n, "Windows"); isWin != strings.EqualFold(string(img.Images[0].Platform), "windows") {
			t.Errorf("%s: image platform %q", n, img.Images[0].Platform)
		}
	}
	if _, err := m.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/nope")}); code(err) != "ParameterNotFound" {
		t.Errorf("unknown parameter: %v, want ParameterNotFound", err)
	}
}
