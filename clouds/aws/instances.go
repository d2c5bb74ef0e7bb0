package aws

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// maxUserData is EC2's limit on user data before base64 encoding.
const maxUserData = 16 * 1024

// tokenGenerations bounds how many times a node name's client token moves
// on after finding a terminated instance behind it.
const tokenGenerations = 32

// liveStates are the instance states a cluster still owns.
var liveStates = []string{"pending", "running", "stopping", "stopped", "shutting-down"}

// imageParameter is the SSM public parameter naming the latest AMI for an
// OS and Windows version ("2019", "2022", "2025"; ignored for Linux).
func imageParameter(os, windowsVersion string) (string, error) {
	switch os {
	case "linux":
		return "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id", nil
	case "windows":
		switch windowsVersion {
		case "2019", "2022", "2025":
			// Core: the node runs no desktop, and Core images are smaller and patched faster.
			return "/aws/service/ami-windows-latest/Windows_Server-" + windowsVersion + "-English-Core-Base", nil
		}
		return "", fmt.Errorf("windows version %q has no image; use 2019, 2022 or 2025", windowsVersion)
	}
	return "", fmt.Errorf("OS %q has no image; use linux or windows", os)
}

// clientToken is the RunInstances idempotency token of a node's generation
// (1 for its first instance): at most 64 ASCII characters, the same for
// the same cluster, node and generation.
func clientToken(clusterName, node string, generation int) string {
	sum := sha256.Sum256([]byte(clusterName + "\x00" + node))
	tok := "mixedk8s-" + hex.EncodeToString(sum[:16])
	if generation > 1 {
		tok += fmt.Sprintf("-g%d", generation)
	}
	return tok
}

// EnsureInstance implements clouds.Cloud: it adopts the node's instance
// found by tag, or launches one, then waits until it runs.
func (c *Cloud) EnsureInstance(ctx context.Context, req clouds.InstanceRequest) (clouds.Instance, error) {
	object := fmt.Sprintf("instance %q", req.Name)
	existing, err := c.findInstance(ctx, req.Cluster, req.Name)
	if err != nil {
		return clouds.Instance{}, err
	}
	var id string
	if existing != nil {
		id = aws.ToString(existing.InstanceId)
	} else if id, err = c.launch(ctx, req); err != nil {
		return clouds.Instance{}, err
	}
	return c.waitRunning(ctx, id, req.Pool, object)
}

func (c *Cloud) launch(ctx context.Context, req clouds.InstanceRequest) (string, error) {
	object := fmt.Sprintf("instance %q", req.Name)
	userData, err := c.firstBoot(req)
	if err != nil {
		return "", &clouds.Error{Kind: clouds.KindInvalid, Op: "RunInstances", Object: object, Err: fmt.Errorf("failed to write the first-boot data: %w", err)}
	}
	if len(userData) > maxUserData {
		return "", &clouds.Error{Kind: clouds.KindInvalid, Op: "RunInstances", Object: object,
			Err: fmt.Errorf("user data is %d bytes, more than EC2's %d", len(userData), maxUserData), Fix: "shorten the node's first-boot data (fewer files or keys in user data)"}
	}
	subnet := c.subnetFor(req)
	if subnet == "" {
		return "", &clouds.Error{Kind: clouds.KindInvalid, Op: "RunInstances", Object: object, Err: fmt.Errorf("cluster %q has no subnet", req.Cluster),
			Fix: "create the network first (EnsureNetwork)"}
	}
	imageID, err := c.image(ctx, req)
	if err != nil {
		return "", err
	}
	root, err := c.rootDevice(ctx, imageID, object)
	if err != nil {
		return "", err
	}
	group := req.Network.Firewalls.For(req.Role)
	tags := Profile.Tags.For(req.Cluster, req.Pool, req.Role, req.Name)
	if req.OS == "windows" && req.WindowsVersion != "" {
		tags[tagWindowsVersion] = req.WindowsVersion
	}
	if req.DiskGB > 0 {
		tags[tagDiskGB] = strconv.Itoa(req.DiskGB)
	}
	in := &ec2.RunInstancesInput{
		ImageId:           aws.String(imageID),
		InstanceType:      types.InstanceType(req.InstanceType),
		MinCount:          aws.Int32(1),
		MaxCount:          aws.Int32(1),
		SubnetId:          aws.String(subnet),
		UserData:          aws.String(base64.StdEncoding.EncodeToString([]byte(userData))),
		TagSpecifications: c.tagSpec(types.ResourceTypeInstance, tags, req.Cluster, req.Name),
		// IMDSv2 only, one hop: a pod behind the node's bridge gets no
		// instance credentials and no first-boot data.
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpTokens: types.HttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(1), HttpEndpoint: types.InstanceMetadataEndpointStateEnabled,
		},
	}
	if group != "" {
		in.SecurityGroupIds = []string{group}
	}
	// The root volume is encrypted whatever the account's default: with
	// Config.KMSKeyID, else the account's EBS key.
	ebs := &types.EbsBlockDevice{Encrypted: aws.Bool(true), DeleteOnTermination: aws.Bool(true)}
	if c.cfg.KMSKeyID != "" {
		ebs.KmsKeyId = aws.String(c.cfg.KMSKeyID)
	}
	if req.DiskGB > 0 {
		ebs.VolumeSize, ebs.VolumeType = aws.Int32(int32(req.DiskGB)), types.VolumeTypeGp3
	}
	in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String(root), Ebs: ebs}}
	if req.NestedVirtualization && needsNestedFlag(req.InstanceType) {
		// Metal types run Hyper-V as they are; virtual c8i/m8i/r8i need the flag.
		in.CpuOptions = &types.CpuOptionsRequest{NestedVirtualization: types.NestedVirtualizationSpecificationEnabled}
	}
	k := call{op: "RunInstances", object: object, pool: req.Pool}
	for gen := 1; gen <= tokenGenerations; gen++ {
		in.ClientToken = aws.String(clientToken(req.Cluster, req.Name, gen))
		out, err := c.ec2.RunInstances(ctx, in)
		if hasCode(err, "IdempotentParameterMismatch") {
			// This token launched an instance with other settings (new user
			// data after a lost reply): adopt it if it lives, else move on.
			live, ferr := c.byToken(ctx, aws.ToString(in.ClientToken), object)
			if ferr != nil {
				return "", ferr
			}
			if live != "" {
				return live, nil
			}
			continue
		}
		if err != nil {
			return "", k.classify(err)
		}
		for _, inst := range out.Instances {
			if st := inst.State; st == nil || (st.Name != types.InstanceStateNameShuttingDown && st.Name != types.InstanceStateNameTerminated) {
				return aws.ToString(inst.InstanceId), nil
			}
		}
		// The token belongs to an instance of this node that was deleted: next generation.
	}
	return "", &clouds.Error{Kind: clouds.KindFatal, Op: "RunInstances", Object: object,
		Err: fmt.Errorf("the node's %d client tokens all belong to terminated instances", tokenGenerations), Fix: "wait a day for EC2 to forget old client tokens, or rename the cluster"}
}

// needsNestedFlag reports whether a type runs Hyper-V only when launched
// with CpuOptions.NestedVirtualization=enabled: the virtual families of
// nestedVirtualization (bare metal needs no flag).
func needsNestedFlag(instanceType string) bool {
	family, size, _ := strings.Cut(instanceType, ".")
	return !strings.HasPrefix(size, "metal") && nestedFamily(family)
}

// subnetFor spreads a cluster's instances over its zone subnets by node name.
func (c *Cloud) subnetFor(req clouds.InstanceRequest) string {
	c.mu.Lock()
	subnets := c.subnets[req.Cluster]
	c.mu.Unlock()
	if len(subnets) == 0 {
		return req.Network.SubnetID
	}
	h := fnv.New32a()
	h.Write([]byte(req.Name))
	return subnets[int(h.Sum32()%uint32(len(subnets)))].id
}

func (c *Cloud) byToken(ctx context.Context, token, object string) (string, error) {
	out, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{filter("client-token", token), filter("instance-state-name", "pending", "running", "stopping", "stopped")}})
	if err != nil {
		return "", call{op: "DescribeInstances", object: object}.classify(err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			return aws.ToString(in.InstanceId), nil
		}
	}
	return "", nil
}

// image returns the AMI for a request: req.Image, or the SSM public parameter's value.
func (c *Cloud) image(ctx context.Context, req clouds.InstanceRequest) (string, error) {
	if req.Image != "" {
		return req.Image, nil
	}
	param, err := imageParameter(req.OS, req.WindowsVersion)
	if err != nil {
		return "", &clouds.Error{Kind: clouds.KindInvalid, Op: "GetParameter", Object: fmt.Sprintf("image of instance %q", req.Name), Err: err,
			Fix: "set the pool's os and windows_version, or image"}
	}
	c.mu.Lock()
	ami, ok := c.amis[param]
	c.mu.Unlock()
	if ok {
		return ami, nil
	}
	out, err := c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param)})
	if err != nil {
		return "", call{op: "GetParameter", object: fmt.Sprintf("SSM parameter %s", param)}.classify(err)
	}
	ami = aws.ToString(out.Parameter.Value)
	c.mu.Lock()
	c.amis[param] = ami
	c.mu.Unlock()
	return ami, nil
}

// rootDevice looks the image up once: it must exist, and its root device
// name is where the disk size goes.
func (c *Cloud) rootDevice(ctx context.Context, imageID, object string) (string, error) {
	c.mu.Lock()
	root, ok := c.roots[imageID]
	c.mu.Unlock()
	if ok {
		return root, nil
	}
	out, err := c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	if err != nil {
		ce := call{op: "DescribeImages", object: fmt.Sprintf("image %s of %s", imageID, object)}.classify(err)
		if clouds.KindOf(ce) == clouds.KindNotFound {
			ce.(*clouds.Error).Fix = "set image to an AMI that exists in the region, or leave it empty for the default"
		}
		return "", ce
	}
	if len(out.Images) == 0 {
		return "", &clouds.Error{Kind: clouds.KindNotFound, Op: "DescribeImages", Object: fmt.Sprintf("image %s", imageID),
			Err: fmt.Errorf("no such image"), Fix: "set image to an AMI that exists in the region, or leave it empty for the default"}
	}
	root = aws.ToString(out.Images[0].RootDeviceName)
	if root == "" {
		root = "/dev/sda1"
	}
	c.mu.Lock()
	c.roots[imageID] = root
	c.mu.Unlock()
	return root, nil
}

// findInstance returns the node's live instance found by tag, or nil.
func (c *Cloud) findInstance(ctx context.Context, clusterName, node string) (*types.Instance, error) {
	out, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		clusterFilter(clusterName), filter("tag:"+TagNode, node), filter("instance-state-name", "pending", "running", "stopping", "stopped"),
	}})
	if err != nil {
		return nil, call{op: "DescribeInstances", object: fmt.Sprintf("instance %q", node)}.classify(err)
	}
	var found *types.Instance
	for _, r := range out.Reservations {
		for i := range r.Instances {
			if found == nil || aws.ToString(r.Instances[i].InstanceId) < aws.ToString(found.InstanceId) {
				found = &r.Instances[i]
			}
		}
	}
	return found, nil
}

// waitRunning polls the instance until it runs, honouring ctx. An
// instance not yet visible (EC2 is eventually consistent) is waited for.
func (c *Cloud) waitRunning(ctx context.Context, id, pool, object string) (clouds.Instance, error) {
	for {
		out, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil && !hasCode(err, "InvalidInstanceID.NotFound") {
			return clouds.Instance{}, call{op: "DescribeInstances", object: object}.classify(err)
		}
		if err == nil {
			for _, r := range out.Reservations {
				for _, in := range r.Instances {
					switch in.State.Name {
					case types.InstanceStateNameRunning:
						return toInstance(in), nil
					case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated:
						reason := aws.ToString(in.StateTransitionReason)
						code := ""
						if in.StateReason != nil {
							code, reason = aws.ToString(in.StateReason.Code), aws.ToString(in.StateReason.Message)
						}
						ce := &clouds.Error{Kind: clouds.KindTransient, Op: "RunInstances", Object: object, Code: code,
							Err: fmt.Errorf("instance %s was terminated while starting: %s", id, reason)}
						if code == "Client.InternalError" && c.cfg.KMSKeyID != "" {
							// EBS checks a volume's key only after RunInstances answered; a key
							// that is missing, disabled or not usable by these credentials
							// ends the launch so (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshooting-launch.html#troubleshooting-launch-internal).
							ce.Kind = clouds.KindInvalid
							ce.Fix = fmt.Sprintf("check that aws.kms_key_id %q is an enabled symmetric key of %s whose key policy lets these credentials use it through EC2 "+
								"(kms:CreateGrant with kms:GrantIsForAWSResource, kms:Decrypt, kms:DescribeKey, kms:GenerateDataKeyWithoutPlaintext, kms:ReEncrypt*; see the security guide)", c.cfg.KMSKeyID, c.cfg.Region)
						}
						return clouds.Instance{}, ce
					}
				}
			}
		}
		t := time.NewTimer(c.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return clouds.Instance{}, fmt.Errorf("failed to wait for %s (%s) to run: %w", object, id, ctx.Err())
		case <-t.C:
		}
	}
}

func toInstance(in types.Instance) clouds.Instance {
	tags := map[string]string{}
	for _, t := range in.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	os := "linux"
	if strings.EqualFold(string(in.Platform), "windows") { // EC2 answers "windows", the SDK enum says "Windows"
		os = "windows"
	}
	state := clouds.StatePending
	if in.State != nil {
		switch in.State.Name {
		case types.InstanceStateNameRunning:
			state = clouds.StateRunning
		case types.InstanceStateNameStopping:
			state = clouds.StateStopping
		case types.InstanceStateNameStopped:
			state = clouds.StateStopped
		case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated:
			state = clouds.StateDeleting
		}
	}
	disk, _ := strconv.Atoi(tags[tagDiskGB])
	return clouds.Instance{
		ID: aws.ToString(in.InstanceId), Cluster: tags[TagCluster], Name: tags[TagNode], Pool: tags[TagPool], Role: tags[TagRole], OS: os,
		InstanceType: string(in.InstanceType), Image: aws.ToString(in.ImageId), WindowsVersion: tags[tagWindowsVersion], DiskGB: disk, State: state,
		PrivateIP: aws.ToString(in.PrivateIpAddress), PublicIP: aws.ToString(in.PublicIpAddress), Tags: tags,
	}
}

// Instances implements clouds.Cloud: one paged DescribeInstances by tag and
// state, so its cost grows with pages, not with nodes.
func (c *Cloud) Instances(ctx context.Context, clusterName string) ([]clouds.Instance, error) {
	p := ec2.NewDescribeInstancesPaginator(c.ec2, &ec2.DescribeInstancesInput{
		Filters:    []types.Filter{clusterFilter(clusterName), filter("instance-state-name", liveStates...)},
		MaxResults: aws.Int32(int32(c.cfg.PageSize)),
	})
	var out []clouds.Instance
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, call{op: "DescribeInstances", object: fmt.Sprintf("instances of cluster %q", clusterName)}.classify(err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				out = append(out, toInstance(in))
			}
		}
	}
	return out, nil
}

// DeleteInstance implements clouds.Cloud. It does not wait: DeleteNetwork
// reports DependencyViolation (transient) until the instance is gone.
func (c *Cloud) DeleteInstance(ctx context.Context, inst clouds.Instance) error {
	object := fmt.Sprintf("instance %q (%s)", inst.Name, inst.ID)
	id := inst.ID
	if id == "" {
		found, err := c.findInstance(ctx, inst.Cluster, inst.Name)
		if err != nil || found == nil {
			return err
		}
		id = aws.ToString(found.InstanceId)
	}
	_, err := c.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err := ignoreNotFound(err); err != nil {
		return call{op: "TerminateInstances", object: object}.classify(err)
	}
	return nil
}
