package ec2_test

import (
	"context"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	lab "github.com/mixedk8s/mixedk8s/test/lab/ec2"
)

func elbClient(t *testing.T, s *lab.Server, key, sec string) *elb.Client {
	return elb.New(elb.Options{Region: s.Region(), BaseEndpoint: aws.String(s.URL()), HTTPClient: httpClient(t, s),
		Credentials: credentials.NewStaticCredentialsProvider(key, sec, "")})
}

// runningInstance launches one instance in subnet and waits until it runs.
func runningInstance(t *testing.T, s *lab.Server, c *ec2.Client, m *ssm.Client, subnet, sg string) string {
	t.Helper()
	ctx := context.Background()
	ami, err := m.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: ami.Parameter.Value, InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(subnet), SecurityGroupIds: []string{sg}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, in := range s.Instances() {
			if in.ID == id && in.State == "running" {
				return id
			}
		}
	}
	t.Fatalf("instance %s never ran", id)
	return ""
}

func TestELBRepliesHaveQueryShape(t *testing.T) {
	t.Parallel()
	s := start(t, lab.Options{Credentials: map[string]string{}})
	form := url.Values{"Action": {"DescribeLoadBalancers"}, "Version": {lab.ELBAPIVersion}, "Names.member.1": {"nope"}}
	resp, err := httpClient(t, s).PostForm(s.URL(), form)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	contains(t, string(b), `<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">`,
		"<Error><Type>Sender</Type><Code>LoadBalancerNotFound</Code>", "<RequestId>")
	form.Del("Names.member.1")
	resp, err = httpClient(t, s).PostForm(s.URL(), form)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	contains(t, string(b), `<DescribeLoadBalancersResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">`,
		"<DescribeLoadBalancersResult>", "<ResponseMetadata><RequestId>")
}

// The rules clouds/aws depends on, through the unchanged SDK client.
func TestELBRules(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []lab.LoadBalancer
	s := start(t, lab.Options{OnLoadBalancer: func(lb lab.LoadBalancer) { mu.Lock(); seen = append(seen, lb); mu.Unlock() }})
	c, m := clients(t, s, keyID, secret)
	e := elbClient(t, s, keyID, secret)
	ctx := context.Background()
	vpc, subnet, sg := network(t, c)

	// Internet-facing needs a route to an internet gateway; internal does not.
	in := &elb.CreateLoadBalancerInput{Name: aws.String("demo-api"), Type: elbtypes.LoadBalancerTypeEnumNetwork, Scheme: elbtypes.LoadBalancerSchemeEnumInternetFacing, Subnets: []string{subnet}}
	if _, err := e.CreateLoadBalancer(ctx, in); code(err) != "InvalidSubnet" {
		t.Errorf("internet-facing without a gateway: %v, want InvalidSubnet", err)
	}
	in.Scheme = elbtypes.LoadBalancerSchemeEnumInternal
	first, err := e.CreateLoadBalancer(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.CreateLoadBalancer(ctx, in)
	if err != nil || aws.ToString(again.LoadBalancers[0].LoadBalancerArn) != aws.ToString(first.LoadBalancers[0].LoadBalancerArn) {
		t.Errorf("same name and settings: %v, want the same load balancer", err)
	}
	other := *in
	other.SecurityGroups = []string{sg}
	if _, err := e.CreateLoadBalancer(ctx, &other); code(err) != "DuplicateLoadBalancerName" {
		t.Errorf("same name, other settings: %v, want DuplicateLoadBalancerName", err)
	}
	long := *in
	long.Name = aws.String(strings.Repeat("n", 33))
	if _, err := e.CreateLoadBalancer(ctx, &long); code(err) != "ValidationError" {
		t.Errorf("33-character name: %v, want ValidationError", err)
	}
	lbARN := first.LoadBalancers[0].LoadBalancerArn
	if err := elb.NewLoadBalancerAvailableWaiter(e, func(o *elb.LoadBalancerAvailableWaiterOptions) { o.MinDelay = 10 * time.Millisecond }).
		Wait(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{aws.ToString(lbARN)}}, 5*time.Second); err != nil {
		t.Fatalf("the load balancer never became active: %v", err)
	}

	_, err = e.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("demo-api"), Protocol: elbtypes.ProtocolEnumTcp, Port: aws.Int32(6443), VpcId: aws.String(vpc),
		TargetType: elbtypes.TargetTypeEnumInstance, HealthCheckIntervalSeconds: aws.Int32(4)})
	if code(err) != "ValidationError" {
		t.Errorf("a 4s health check interval: %v, want ValidationError", err)
	}
	tg, err := e.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("demo-api"), Protocol: elbtypes.ProtocolEnumTcp, Port: aws.Int32(6443), VpcId: aws.String(vpc),
		TargetType: elbtypes.TargetTypeEnumInstance})
	if err != nil {
		t.Fatal(err)
	}
	tgARN := tg.TargetGroups[0].TargetGroupArn
	if g := tg.TargetGroups[0]; aws.ToInt32(g.HealthCheckIntervalSeconds) != 30 || aws.ToInt32(g.HealthyThresholdCount) != 5 || g.HealthCheckProtocol != elbtypes.ProtocolEnumTcp {
		t.Errorf("target group defaults %+v, want ELB's TCP defaults", g)
	}
	if _, err := e.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lbARN, Protocol: elbtypes.ProtocolEnumTcp, Port: aws.Int32(6443),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tgARN}}}); err != nil {
		t.Fatal(err)
	}

	// Only running instances of the VPC register; a target not registered cannot be deregistered.
	id := runningInstance(t, s, c, m, subnet, sg)
	if _, err := e.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: tgARN, Targets: []elbtypes.TargetDescription{{Id: aws.String("i-0000000000000dead")}}}); code(err) != "InvalidTarget" {
		t.Errorf("registering a missing instance: %v, want InvalidTarget", err)
	}
	if _, err := e.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: tgARN, Targets: []elbtypes.TargetDescription{{Id: aws.String(id)}}}); err != nil {
		t.Fatal(err)
	}
	h, err := e.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: tgARN})
	if err != nil || len(h.TargetHealthDescriptions) != 1 || h.TargetHealthDescriptions[0].TargetHealth.State != elbtypes.TargetHealthStateEnumHealthy {
		t.Errorf("target health %+v, %v: want one healthy target", h, err)
	}
	if lbs := s.LoadBalancers(); len(lbs) != 1 || !slices.Equal(lbs[0].Listeners[0].Targets, []string{id}) || len(lbs[0].Addresses) != 1 {
		t.Errorf("inspection %+v: want one load balancer with an address and the target", lbs)
	}
	mu.Lock()
	last := seen[len(seen)-1]
	mu.Unlock()
	if last.State != "active" || !slices.Equal(last.Listeners[0].Targets, []string{id}) {
		t.Errorf("hook's last report %+v: want the active load balancer with its target", last)
	}

	// Deleting in the wrong order fails as ELB and EC2 do.
	if _, err := e.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: tgARN}); code(err) != "ResourceInUse" {
		t.Errorf("deleting a target group in use: %v, want ResourceInUse", err)
	}
	if _, err := c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(subnet)}); code(err) != "DependencyViolation" {
		t.Errorf("deleting a subnet under a load balancer: %v, want DependencyViolation", err)
	}
	if _, err := e.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lbARN}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lbARN}); err != nil {
		t.Errorf("deleting a deleted load balancer: %v, want success", err)
	}
	if _, err := e.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: tgARN}); err != nil {
		t.Errorf("deleting the target group once its load balancer is gone: %v", err)
	}
	if _, err := e.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{aws.ToString(tgARN)}}); code(err) != "TargetGroupNotFound" {
		t.Errorf("describing a deleted target group: %v, want TargetGroupNotFound", err)
	}
	mu.Lock()
	last = seen[len(seen)-1]
	mu.Unlock()
	if !last.Deleted {
		t.Errorf("hook's last report %+v: want the deletion", last)
	}

	// A missing permission is AccessDenied; bad credentials are ELB's codes.
	s.Deny("DescribeLoadBalancers", true)
	if _, err := e.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{}); code(err) != "AccessDenied" {
		t.Errorf("denied: %v, want AccessDenied", err)
	}
	s.Deny("DescribeLoadBalancers", false)
	if _, err := elbClient(t, s, keyID, "wrong").DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{}); code(err) != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %v, want SignatureDoesNotMatch", err)
	}
}
