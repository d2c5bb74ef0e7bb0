package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// The cluster's API load balancer is a Network Load Balancer
// (<cluster>-api) in every subnet of the cluster, a TCP listener on the API
// port forwarding to a TCP target group of instances (<cluster>-api) with a
// TCP health check, and a security group (<cluster>-api-lb) that admits
// the admins' CIDRs and the cluster's network. All are tagged with the
// cluster and found by name, then checked by tag; creates are idempotent
// on ELB's side (the same name and settings answer the existing object,
// API_CreateLoadBalancer.html), so a retry after a lost reply adopts.
//
// The target group turns client IP preservation off: with it on, a
// control-plane node that dials the load balancer and is routed to itself
// gets no answer (NLB "Connections time out for requests from a target to
// its load balancer", network/load-balancer-troubleshooting.html), which
// kubelets on control-plane nodes would hit. The load balancer's addresses
// are in the cluster's subnets, so the control-plane group's rule for the
// node CIDR (or, in an existing network, the subnets' ranges) admits its
// forwarded connections and health checks; the
// load balancer's own group keeps the admins' limit for clients.

var _ clouds.LoadBalancers = (*Cloud)(nil)

// Name suffixes of the load-balancing objects.
const (
	nameAPI     = "api"    // load balancer and target group
	nameAPIRule = "api-lb" // the load balancer's security group
)

// Health check of the API target group: ten-second TCP checks, two to
// turn healthy or unhealthy, so a lost control plane leaves rotation in
// about twenty seconds (ranges: API_CreateTargetGroup.html).
const (
	healthInterval  = 10
	healthTimeout   = 5
	healthThreshold = 2
	// drainSeconds bounds how long a removed control plane keeps its open
	// connections (ELB's default is 300s).
	drainSeconds = "30"
)

// elbNameMax is ELB's limit for load balancer and target group names.
const elbNameMax = 32

// elbName is <cluster>-<suffix>, or a cut of the cluster name with a hash
// of the whole when that would pass ELB's 32 characters, so two long
// cluster names never share a name.
func elbName(cluster, suffix string) string {
	name := cluster + "-" + suffix
	if len(name) <= elbNameMax {
		return name
	}
	sum := sha256.Sum256([]byte(cluster))
	h := hex.EncodeToString(sum[:])[:8]
	keep := strings.TrimRight(cluster[:elbNameMax-len(suffix)-len(h)-2], "-")
	return keep + "-" + h + "-" + suffix
}

// lbOps are the ELBv2 operations, for the IAM action a fix names.
var lbOps = map[string]bool{
	"CreateLoadBalancer": true, "DescribeLoadBalancers": true, "DeleteLoadBalancer": true,
	"CreateTargetGroup": true, "DescribeTargetGroups": true, "DeleteTargetGroup": true,
	"ModifyTargetGroupAttributes": true, "DescribeTargetGroupAttributes": true,
	"CreateListener": true, "DescribeListeners": true, "DeleteListener": true,
	"RegisterTargets": true, "DeregisterTargets": true, "DescribeTargetHealth": true, "DescribeTags": true,
}

// elbTags are a load-balancing object's tags: the cluster and Name, then the user's.
func (c *Cloud) elbTags(cluster, name string) []types.Tag {
	tags := []types.Tag{{Key: aws.String(TagCluster), Value: aws.String(cluster)}, {Key: aws.String("Name"), Value: aws.String(name)}}
	for _, k := range sortedKeys(c.cfg.Tags) {
		if k != TagCluster && k != "Name" {
			tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(c.cfg.Tags[k])})
		}
	}
	return tags
}

// EnsureLoadBalancer implements clouds.LoadBalancers.
func (c *Cloud) EnsureLoadBalancer(ctx context.Context, req clouds.LoadBalancerRequest) (clouds.LoadBalancer, error) {
	name := elbName(req.Cluster, nameAPI)
	object := fmt.Sprintf("load balancer %q", name)
	if req.Port < 1 || req.Port > 65535 {
		return clouds.LoadBalancer{}, &clouds.Error{Kind: clouds.KindInvalid, Op: "CreateListener", Object: object,
			Err: fmt.Errorf("port %d is not a TCP port", req.Port), Fix: "pass the API server port, 6443"}
	}
	vpcID, nodes, subnets, err := c.lbNetwork(ctx, req.Cluster, object)
	if err != nil {
		return clouds.LoadBalancer{}, err
	}
	var rules []rule
	for _, n := range nodes {
		rules = append(rules, rule{"tcp", int32(req.Port), int32(req.Port), n, "Kubernetes API from nodes"})
	}
	for _, a := range req.AdminCIDRs {
		rules = append(rules, rule{"tcp", int32(req.Port), int32(req.Port), a, "Kubernetes API from admins"})
	}
	group, err := c.ensureGroup(ctx, req.Cluster, vpcID, nameAPIRule, fmt.Sprintf("mixedk8s API load balancer of cluster %s", req.Cluster), rules)
	if err != nil {
		return clouds.LoadBalancer{}, err
	}
	scheme := types.LoadBalancerSchemeEnumInternetFacing
	if req.Internal {
		scheme = types.LoadBalancerSchemeEnumInternal
	}
	lb, err := c.ensureNLB(ctx, req.Cluster, name, scheme, subnets, group)
	if err != nil {
		return clouds.LoadBalancer{}, err
	}
	tg, err := c.ensureTargetGroup(ctx, req.Cluster, vpcID, int32(req.Port))
	if err != nil {
		return clouds.LoadBalancer{}, err
	}
	if err := c.ensureListener(ctx, req.Cluster, lb, tg, int32(req.Port)); err != nil {
		return clouds.LoadBalancer{}, err
	}
	if lb.State == nil || lb.State.Code != types.LoadBalancerStateEnumActive {
		w := elb.NewLoadBalancerAvailableWaiter(c.elb, func(o *elb.LoadBalancerAvailableWaiterOptions) {
			o.MinDelay, o.MaxDelay = c.cfg.PollInterval, max(c.cfg.PollInterval, 30*time.Second)
		})
		if err := w.Wait(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{aws.ToString(lb.LoadBalancerArn)}}, 15*time.Minute); err != nil {
			return clouds.LoadBalancer{}, call{op: "DescribeLoadBalancers", object: object}.classify(err)
		}
	}
	targets, err := c.registered(ctx, aws.ToString(tg.TargetGroupArn), object)
	if err != nil {
		return clouds.LoadBalancer{}, err
	}
	return clouds.LoadBalancer{ID: aws.ToString(lb.LoadBalancerArn), Address: aws.ToString(lb.DNSName), Port: req.Port, Targets: targets}, nil
}

// lbNetwork returns the cluster's VPC, the ranges its nodes are in (the
// VPC's CIDR, or an existing network's subnet ranges) and its subnets (one
// per zone).
func (c *Cloud) lbNetwork(ctx context.Context, cluster, object string) (string, []string, []string, error) {
	vpcID, cidr, err := c.cfg.VPCID, "", error(nil)
	if !c.existing() {
		vpcID, cidr, err = c.findVPC(ctx, cluster)
	}
	if err != nil {
		return "", nil, nil, err
	}
	if vpcID == "" {
		return "", nil, nil, &clouds.Error{Kind: clouds.KindInvalid, Op: "CreateLoadBalancer", Object: object,
			Err: fmt.Errorf("cluster %q has no VPC", cluster), Fix: "create the cluster's network before its load balancer"}
	}
	if _, _, err := c.FindNetwork(ctx, cluster); err != nil {
		return "", nil, nil, err
	}
	c.mu.Lock()
	var subnets []string
	for _, s := range c.subnets[cluster] {
		subnets = append(subnets, s.id)
	}
	c.mu.Unlock()
	if len(subnets) == 0 {
		return "", nil, nil, &clouds.Error{Kind: clouds.KindInvalid, Op: "CreateLoadBalancer", Object: object,
			Err: fmt.Errorf("cluster %q has no subnet", cluster), Fix: "create the cluster's network before its load balancer"}
	}
	return vpcID, c.nodeSources(cluster, cidr), subnets, nil
}

// findNLB returns the load balancer of that name if the cluster owns it.
func (c *Cloud) findNLB(ctx context.Context, cluster, name string) (*types.LoadBalancer, error) {
	object := fmt.Sprintf("load balancer %q", name)
	out, err := c.elb.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{name}})
	if hasCode(err, "LoadBalancerNotFound") {
		return nil, nil
	}
	if err != nil {
		return nil, call{op: "DescribeLoadBalancers", object: object}.classify(err)
	}
	if len(out.LoadBalancers) == 0 {
		return nil, nil
	}
	lb := out.LoadBalancers[0]
	if err := c.checkOwner(ctx, cluster, aws.ToString(lb.LoadBalancerArn), object); err != nil {
		return nil, err
	}
	return &lb, nil
}

// checkOwner refuses to adopt an object of the expected name that carries
// another cluster's tag, or none: it belongs to someone else.
func (c *Cloud) checkOwner(ctx context.Context, cluster, arn, object string) error {
	tags, err := c.elb.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: []string{arn}})
	if err != nil {
		return call{op: "DescribeTags", object: object}.classify(err)
	}
	for _, d := range tags.TagDescriptions {
		for _, t := range d.Tags {
			if aws.ToString(t.Key) == TagCluster && aws.ToString(t.Value) == cluster {
				return nil
			}
		}
	}
	return &clouds.Error{Kind: clouds.KindInvalid, Op: "DescribeTags", Object: object,
		Err: fmt.Errorf("%s exists in the region without the %s=%s tag", object, TagCluster, cluster),
		Fix: "it belongs to something else: delete it, or give the cluster another name"}
}

func (c *Cloud) ensureNLB(ctx context.Context, cluster, name string, scheme types.LoadBalancerSchemeEnum, subnets []string, group string) (*types.LoadBalancer, error) {
	object := fmt.Sprintf("load balancer %q", name)
	lb, err := c.findNLB(ctx, cluster, name)
	if err != nil {
		return nil, err
	}
	if lb == nil {
		out, err := c.elb.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{
			Name: aws.String(name), Type: types.LoadBalancerTypeEnumNetwork, Scheme: scheme, IpAddressType: types.IpAddressTypeIpv4,
			Subnets: subnets, SecurityGroups: []string{group}, Tags: c.elbTags(cluster, name),
		})
		if hasCode(err, "DuplicateLoadBalancerName") {
			// Created meanwhile with other settings (another subnet list): adopt it if it is ours.
			if lb, err = c.findNLB(ctx, cluster, name); err != nil || lb != nil {
				return c.checkScheme(lb, scheme, object, err)
			}
		}
		if err != nil {
			return nil, call{op: "CreateLoadBalancer", object: object, fixText: schemeFix(scheme)}.classify(err)
		}
		if len(out.LoadBalancers) == 0 {
			return nil, &clouds.Error{Kind: clouds.KindTransient, Op: "CreateLoadBalancer", Object: object, Err: fmt.Errorf("the reply holds no load balancer")}
		}
		lb = &out.LoadBalancers[0]
	}
	return c.checkScheme(lb, scheme, object, nil)
}

// checkScheme refuses a load balancer whose scheme differs from the
// request: ELB cannot change it, and the API certificate names the address.
func (c *Cloud) checkScheme(lb *types.LoadBalancer, want types.LoadBalancerSchemeEnum, object string, err error) (*types.LoadBalancer, error) {
	if err != nil || lb == nil || lb.Scheme == want {
		return lb, err
	}
	return nil, &clouds.Error{Kind: clouds.KindInvalid, Op: "CreateLoadBalancer", Object: object,
		Err: fmt.Errorf("%s is %s, and the cluster asks for %s; ELB cannot change a load balancer's scheme", object, lb.Scheme, want),
		Fix: "set the cluster's API access back, or destroy and recreate the cluster"}
}

// schemeFix names the likely cause when ELB refuses the subnets.
func schemeFix(scheme types.LoadBalancerSchemeEnum) string {
	if scheme == types.LoadBalancerSchemeEnumInternetFacing {
		return "an internet-facing load balancer needs subnets routed to an internet gateway; give the VPC one or make the API access internal"
	}
	return "check the cluster's subnets and security groups"
}

func (c *Cloud) ensureTargetGroup(ctx context.Context, cluster, vpcID string, port int32) (*types.TargetGroup, error) {
	name := elbName(cluster, nameAPI)
	object := fmt.Sprintf("target group %q", name)
	var tg *types.TargetGroup
	out, err := c.elb.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{name}})
	switch {
	case hasCode(err, "TargetGroupNotFound"):
	case err != nil:
		return nil, call{op: "DescribeTargetGroups", object: object}.classify(err)
	case len(out.TargetGroups) > 0:
		tg = &out.TargetGroups[0]
		if err := c.checkOwner(ctx, cluster, aws.ToString(tg.TargetGroupArn), object); err != nil {
			return nil, err
		}
		if aws.ToInt32(tg.Port) != port {
			return nil, &clouds.Error{Kind: clouds.KindInvalid, Op: "CreateTargetGroup", Object: object,
				Err: fmt.Errorf("%s sends to port %d, not %d; ELB cannot change a target group's port", object, aws.ToInt32(tg.Port), port),
				Fix: "destroy and recreate the cluster's load balancer (Destroy, then Apply)"}
		}
	}
	if tg == nil {
		res, err := c.elb.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
			Name: aws.String(name), Protocol: types.ProtocolEnumTcp, Port: aws.Int32(port), VpcId: aws.String(vpcID),
			TargetType: types.TargetTypeEnumInstance, HealthCheckEnabled: aws.Bool(true),
			HealthCheckProtocol: types.ProtocolEnumTcp, HealthCheckPort: aws.String("traffic-port"),
			HealthCheckIntervalSeconds: aws.Int32(healthInterval), HealthCheckTimeoutSeconds: aws.Int32(healthTimeout),
			HealthyThresholdCount: aws.Int32(healthThreshold), UnhealthyThresholdCount: aws.Int32(healthThreshold),
			Tags: c.elbTags(cluster, name),
		})
		if err != nil {
			return nil, call{op: "CreateTargetGroup", object: object}.classify(err)
		}
		if len(res.TargetGroups) == 0 {
			return nil, &clouds.Error{Kind: clouds.KindTransient, Op: "CreateTargetGroup", Object: object, Err: fmt.Errorf("the reply holds no target group")}
		}
		tg = &res.TargetGroups[0]
	}
	want := map[string]string{"preserve_client_ip.enabled": "false", "deregistration_delay.timeout_seconds": drainSeconds}
	attrs, err := c.elb.DescribeTargetGroupAttributes(ctx, &elb.DescribeTargetGroupAttributesInput{TargetGroupArn: tg.TargetGroupArn})
	if err != nil {
		return nil, call{op: "DescribeTargetGroupAttributes", object: object}.classify(err)
	}
	for _, a := range attrs.Attributes {
		if v, ok := want[aws.ToString(a.Key)]; ok && v == aws.ToString(a.Value) {
			delete(want, aws.ToString(a.Key))
		}
	}
	if len(want) > 0 {
		var set []types.TargetGroupAttribute
		for _, k := range sortedKeys(want) {
			set = append(set, types.TargetGroupAttribute{Key: aws.String(k), Value: aws.String(want[k])})
		}
		if _, err := c.elb.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: tg.TargetGroupArn, Attributes: set}); err != nil {
			return nil, call{op: "ModifyTargetGroupAttributes", object: object}.classify(err)
		}
	}
	return tg, nil
}

func (c *Cloud) ensureListener(ctx context.Context, cluster string, lb *types.LoadBalancer, tg *types.TargetGroup, port int32) error {
	object := fmt.Sprintf("listener on port %d of load balancer %q", port, aws.ToString(lb.LoadBalancerName))
	out, err := c.elb.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: lb.LoadBalancerArn})
	if err != nil {
		return call{op: "DescribeListeners", object: object}.classify(err)
	}
	for _, l := range out.Listeners {
		if aws.ToInt32(l.Port) != port {
			continue
		}
		if len(l.DefaultActions) == 1 && aws.ToString(l.DefaultActions[0].TargetGroupArn) == aws.ToString(tg.TargetGroupArn) {
			return nil
		}
		return &clouds.Error{Kind: clouds.KindInvalid, Op: "CreateListener", Object: object,
			Err: fmt.Errorf("%s forwards elsewhere than target group %q", object, aws.ToString(tg.TargetGroupName)),
			Fix: "delete that listener; the next Apply recreates it"}
	}
	_, err = c.elb.CreateListener(ctx, &elb.CreateListenerInput{
		LoadBalancerArn: lb.LoadBalancerArn, Protocol: types.ProtocolEnumTcp, Port: aws.Int32(port),
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}},
		Tags:           c.elbTags(cluster, aws.ToString(lb.LoadBalancerName)),
	})
	if err != nil {
		return call{op: "CreateListener", object: object}.classify(err)
	}
	return nil
}

// registered lists the instance IDs registered in a target group and not
// draining, sorted.
func (c *Cloud) registered(ctx context.Context, tgARN, object string) ([]string, error) {
	out, err := c.elb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN)})
	if err != nil {
		return nil, call{op: "DescribeTargetHealth", object: object}.classify(err)
	}
	var ids []string
	for _, d := range out.TargetHealthDescriptions {
		if d.TargetHealth != nil && d.TargetHealth.State == types.TargetHealthStateEnumDraining {
			continue
		}
		if d.Target != nil {
			ids = append(ids, aws.ToString(d.Target.Id))
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// FindLoadBalancer implements clouds.LoadBalancers.
func (c *Cloud) FindLoadBalancer(ctx context.Context, cluster string) (clouds.LoadBalancer, bool, error) {
	name := elbName(cluster, nameAPI)
	object := fmt.Sprintf("load balancer %q", name)
	lb, err := c.findNLB(ctx, cluster, name)
	if err != nil || lb == nil {
		return clouds.LoadBalancer{}, false, err
	}
	out := clouds.LoadBalancer{ID: aws.ToString(lb.LoadBalancerArn), Address: aws.ToString(lb.DNSName)}
	ls, err := c.elb.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: lb.LoadBalancerArn})
	if err != nil {
		return clouds.LoadBalancer{}, false, call{op: "DescribeListeners", object: object}.classify(err)
	}
	if len(ls.Listeners) > 0 { // EnsureLoadBalancer makes one
		l := ls.Listeners[0]
		out.Port = int(aws.ToInt32(l.Port))
		if len(l.DefaultActions) == 1 && l.DefaultActions[0].TargetGroupArn != nil {
			if out.Targets, err = c.registered(ctx, aws.ToString(l.DefaultActions[0].TargetGroupArn), object); err != nil {
				return clouds.LoadBalancer{}, false, err
			}
		}
	}
	return out, true, nil
}

// SetLoadBalancerTargets implements clouds.LoadBalancers: it registers the
// instances missing from the load balancer's target group and
// deregisters the others (they drain, then leave).
func (c *Cloud) SetLoadBalancerTargets(ctx context.Context, lb clouds.LoadBalancer, targets []clouds.Instance) error {
	object := fmt.Sprintf("targets of load balancer %s", lb.ID)
	tgs, err := c.elb.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{LoadBalancerArn: aws.String(lb.ID)})
	if err != nil {
		return call{op: "DescribeTargetGroups", object: object}.classify(err)
	}
	if len(tgs.TargetGroups) != 1 {
		return &clouds.Error{Kind: clouds.KindNotFound, Op: "DescribeTargetGroups", Object: object,
			Err: fmt.Errorf("the load balancer forwards to %d target groups, not one", len(tgs.TargetGroups)), Fix: "run Apply again to recreate its listener"}
	}
	tg := tgs.TargetGroups[0].TargetGroupArn
	have, err := c.registered(ctx, aws.ToString(tg), object)
	if err != nil {
		return err
	}
	var want []string
	for _, in := range targets {
		want = append(want, in.ID)
	}
	slices.Sort(want)
	want = slices.Compact(want)
	var add, drop []types.TargetDescription
	for _, id := range want {
		if !slices.Contains(have, id) {
			add = append(add, types.TargetDescription{Id: aws.String(id)})
		}
	}
	for _, id := range have {
		if !slices.Contains(want, id) {
			drop = append(drop, types.TargetDescription{Id: aws.String(id)})
		}
	}
	if len(add) > 0 {
		if _, err := c.elb.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: tg, Targets: add}); err != nil {
			return call{op: "RegisterTargets", object: object, fixText: "register only running instances of the cluster's VPC"}.classify(err)
		}
	}
	if len(drop) > 0 {
		_, err := c.elb.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: tg, Targets: drop})
		if err != nil && !hasCode(err, "InvalidTarget") { // already gone: what was asked
			return call{op: "DeregisterTargets", object: object}.classify(err)
		}
	}
	return nil
}

// DeleteLoadBalancer implements clouds.LoadBalancers: every load balancer
// and target group carrying the cluster's tag (listeners first, then the
// load balancer, then once it is gone its target groups), then the load
// balancer's security group. ELB releases a deleted load balancer's
// network interfaces a little later; until then the group's deletion
// fails with DependencyViolation, a transient error.
func (c *Cloud) DeleteLoadBalancer(ctx context.Context, cluster string) error {
	lbs, err := c.taggedLoadBalancers(ctx, cluster)
	if err != nil {
		return err
	}
	for _, lb := range lbs {
		object := fmt.Sprintf("load balancer %q", aws.ToString(lb.LoadBalancerName))
		ls, err := c.elb.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: lb.LoadBalancerArn})
		if err := ignoreNotFound(err); err != nil {
			return call{op: "DescribeListeners", object: object}.classify(err)
		}
		if ls != nil {
			for _, l := range ls.Listeners {
				_, err := c.elb.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: l.ListenerArn})
				if err := ignoreNotFound(err); err != nil {
					return call{op: "DeleteListener", object: object}.classify(err)
				}
			}
		}
		if _, err := c.elb.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn}); err != nil {
			return call{op: "DeleteLoadBalancer", object: object}.classify(err)
		}
		w := elb.NewLoadBalancersDeletedWaiter(c.elb, func(o *elb.LoadBalancersDeletedWaiterOptions) {
			o.MinDelay, o.MaxDelay = c.cfg.PollInterval, max(c.cfg.PollInterval, 30*time.Second)
		})
		if err := w.Wait(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{aws.ToString(lb.LoadBalancerArn)}}, 10*time.Minute); err != nil {
			return call{op: "DescribeLoadBalancers", object: object}.classify(err)
		}
	}
	tgs, err := c.taggedTargetGroups(ctx, cluster)
	if err != nil {
		return err
	}
	for _, tg := range tgs {
		_, err := c.elb.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: tg.TargetGroupArn})
		if err != nil {
			return call{op: "DeleteTargetGroup", object: fmt.Sprintf("target group %q", aws.ToString(tg.TargetGroupName))}.classify(err)
		}
	}
	name := cluster + "-" + nameAPIRule
	groups, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{clusterFilter(cluster), filter("group-name", name)}})
	if err != nil {
		return call{op: "DescribeSecurityGroups", object: fmt.Sprintf("security group %q", name)}.classify(err)
	}
	for _, g := range groups.SecurityGroups {
		_, err := c.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: g.GroupId})
		if err := ignoreNotFound(err); err != nil {
			return call{op: "DeleteSecurityGroup", object: fmt.Sprintf("security group %q (%s)", name, aws.ToString(g.GroupId))}.classify(err)
		}
	}
	return nil
}

// taggedLoadBalancers lists the region's load balancers that carry the
// cluster's tag: ELB filters by name or ARN only, so all are listed and
// their tags read, 20 ARNs per DescribeTags call (its limit).
func (c *Cloud) taggedLoadBalancers(ctx context.Context, cluster string) ([]types.LoadBalancer, error) {
	object := fmt.Sprintf("load balancers of cluster %q", cluster)
	var all []types.LoadBalancer
	p := elb.NewDescribeLoadBalancersPaginator(c.elb, &elb.DescribeLoadBalancersInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, call{op: "DescribeLoadBalancers", object: object}.classify(err)
		}
		all = append(all, page.LoadBalancers...)
	}
	return keepTagged(ctx, c, cluster, object, all, func(lb types.LoadBalancer) string { return aws.ToString(lb.LoadBalancerArn) })
}

func (c *Cloud) taggedTargetGroups(ctx context.Context, cluster string) ([]types.TargetGroup, error) {
	object := fmt.Sprintf("target groups of cluster %q", cluster)
	var all []types.TargetGroup
	p := elb.NewDescribeTargetGroupsPaginator(c.elb, &elb.DescribeTargetGroupsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, call{op: "DescribeTargetGroups", object: object}.classify(err)
		}
		all = append(all, page.TargetGroups...)
	}
	return keepTagged(ctx, c, cluster, object, all, func(tg types.TargetGroup) string { return aws.ToString(tg.TargetGroupArn) })
}

// keepTagged keeps the objects whose ARN carries the cluster's tag.
func keepTagged[T any](ctx context.Context, c *Cloud, cluster, object string, all []T, arnOf func(T) string) ([]T, error) {
	arns := make([]string, len(all))
	for i, o := range all {
		arns[i] = arnOf(o)
	}
	ours, err := c.taggedARNs(ctx, cluster, arns, object)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(o T) bool { return !ours[arnOf(o)] }), nil
}

// taggedARNs returns which ARNs carry the cluster's tag. An object deleted
// between the listing and the tag read is not ours to delete any more.
func (c *Cloud) taggedARNs(ctx context.Context, cluster string, arns []string, object string) (map[string]bool, error) {
	ours := map[string]bool{}
	for chunk := range slices.Chunk(arns, 20) {
		out, err := c.elb.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: chunk})
		if hasCode(err, "LoadBalancerNotFound", "TargetGroupNotFound") && len(chunk) > 1 {
			for _, one := range chunk { // find the survivors one by one
				got, err := c.taggedARNs(ctx, cluster, []string{one}, object)
				if err != nil {
					return nil, err
				}
				for k := range got {
					ours[k] = true
				}
			}
			continue
		}
		if hasCode(err, "LoadBalancerNotFound", "TargetGroupNotFound") {
			continue
		}
		if err != nil {
			return nil, call{op: "DescribeTags", object: object}.classify(err)
		}
		for _, d := range out.TagDescriptions {
			for _, t := range d.Tags {
				if aws.ToString(t.Key) == TagCluster && aws.ToString(t.Value) == cluster {
					ours[aws.ToString(d.ResourceArn)] = true
				}
			}
		}
	}
	return ours, nil
}
