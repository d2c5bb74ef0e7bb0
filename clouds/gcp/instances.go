package gcp

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/iterator"
	"google.golang.org/protobuf/proto"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Label keys: GCE label keys match [a-z][-a-z0-9_]{0,62} (no "." or "/"),
// so the bookkeeping tags are spelled this way on GCE, like CAPG's
// capg-cluster-<name> (kubernetes-sigs/cluster-api-provider-gcp api/v1beta1/labels.go).
const (
	LabelCluster = "mixedk8s-cluster"
	LabelPool    = "mixedk8s-pool"
	LabelRole    = "mixedk8s-role"
	LabelNode    = "mixedk8s-node"
)

// labelValue spells a value as GCE labels allow ([a-z0-9_-]{0,63}, lowercase).
func labelValue(v string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(v) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	return s[:min(len(s), 63)]
}

// imageTable are the public image families of each OS and Windows version:
// Ubuntu 24.04 LTS from ubuntu-os-cloud
// (https://cloud.google.com/compute/docs/images/os-details#ubuntu_lts) and
// Windows Server Core from windows-cloud
// (gh:GoogleCloudPlatform/PerfKitBenchmarker providers/gcp/gce_windows_virtual_machine.py;
// windows-2025-core in gh:GoogleCloudPlatform/compute-image-windows). A
// family always resolves to its newest image.
var imageTable = map[string]string{
	"linux":        "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64",
	"windows/2019": "projects/windows-cloud/global/images/family/windows-2019-core",
	"windows/2022": "projects/windows-cloud/global/images/family/windows-2022-core",
	"windows/2025": "projects/windows-cloud/global/images/family/windows-2025-core",
}

// imageOf returns the image family of an OS and Windows version.
func imageOf(os, windowsVersion string) (string, error) {
	key := os
	if os == "windows" {
		key += "/" + windowsVersion
	}
	if img, ok := imageTable[key]; ok {
		return img, nil
	}
	if os == "windows" {
		return "", fmt.Errorf("windows version %q has no image; use 2019, 2022 or 2025", windowsVersion)
	}
	return "", fmt.Errorf("OS %q has no image; use linux or windows", os)
}

// MaxWindowsName: a Windows computer name (the NetBIOS name) has at most
// 15 characters, and GCE names the computer after the first label of the
// instance's hostname (gh:GoogleCloudPlatform/compute-image-windows
// gce/sysprep/instance_setup.ps1, Change-InstanceName, in sysprep specialize).
const maxWindowsName = 15

// windowsHostname is a Windows instance's custom hostname: its first label
// is the computer name the request asks for, so the instance name (up to 63
// characters) stays the node name. A custom hostname has at least two
// labels (computepb Instance.Hostname; https://cloud.google.com/compute/docs/instances/custom-hostname-vm).
func windowsHostname(req clouds.InstanceRequest) string {
	return strings.ToLower(cmp.Or(req.ComputerName, req.Name)) + "." + req.Cluster + ".internal"
}

// errHyperV is why a Hyper-V isolated pool cannot run on GCE.
const errHyperV = "Hyper-V isolation needs nested virtualization, and on Compute Engine nested virtualization supports only Linux KVM as the L1 hypervisor, never Hyper-V or Windows Server images (https://cloud.google.com/compute/docs/instances/nested-virtualization/overview)"

// fixHyperV is what to change instead.
const fixHyperV = "use process isolation for the pool's Windows containers (remove the Hyper-V isolation setting), or run the pool on Azure or AWS"

// zoneFor spreads a cluster's instances over the zones by node name, so a
// node's zone, and with it its instance's full name, is deterministic.
func (c *Cloud) zoneFor(node string) string {
	h := fnv.New32a()
	h.Write([]byte(node))
	return c.cfg.Zones[int(h.Sum32()%uint32(len(c.cfg.Zones)))]
}

// EnsureInstance implements clouds.Cloud: it adopts the node's instance,
// starts it when it is stopped, or inserts it, then waits until it runs.
func (c *Cloud) EnsureInstance(ctx context.Context, req clouds.InstanceRequest) (clouds.Instance, error) {
	zone := c.zoneFor(req.Name)
	object := fmt.Sprintf("instance %q in %s", req.Name, zone)
	if err := c.checkRequest(req, object); err != nil {
		return clouds.Instance{}, err
	}
	for gen := uint64(1); gen <= maxGenerations; gen++ {
		got, err := c.instances.Get(ctx, &computepb.GetInstanceRequest{Project: c.cfg.Project, Zone: zone, Instance: req.Name}, c.retry())
		if err == nil {
			if got.GetLabels()[LabelCluster] != req.Cluster {
				return clouds.Instance{}, &clouds.Error{Kind: clouds.KindInvalid, Op: "instances.get", Object: object,
					Err: fmt.Errorf("the instance exists but its %s label is %q", LabelCluster, got.GetLabels()[LabelCluster]),
					Fix: "rename the cluster or the pool, or delete the instance if nothing uses it"}
			}
			return c.waitRunning(ctx, got, req, zone)
		}
		if ce := (call{op: "instances.get", object: object}).classify(err); clouds.KindOf(ce) != clouds.KindNotFound {
			return clouds.Instance{}, ce
		}
		// The next turn reads the instance back; when it is still missing
		// (the requestId replayed an earlier, failed or since deleted
		// insert), the next generation is a fresh attempt.
		if err := c.insert(ctx, req, zone, gen); err != nil {
			return clouds.Instance{}, err
		}
	}
	return clouds.Instance{}, generationsExhausted(call{op: "instances.insert", object: object})
}

// insert inserts the node's instance with generation gen's requestId and
// waits for the operation. A reply that is already DONE with errors is the
// operation of an earlier insert with this requestId (Compute keeps
// requestIds for at least 60 minutes; a fresh insert is answered while
// PENDING): it is not reported, and the caller's next generation is a fresh
// attempt. A replay of a failed insert whose reply was lost in this very
// call is retried the same way, which is what a new attempt would do anyway.
func (c *Cloud) insert(ctx context.Context, req clouds.InstanceRequest, zone string, gen uint64) error {
	object := fmt.Sprintf("instance %q in %s", req.Name, zone)
	k := call{op: "instances.insert", object: object, pool: req.Pool, zone: zone}
	res, err := c.instanceResource(ctx, req, zone)
	if err != nil {
		return err
	}
	op, err := c.instances.Insert(ctx, &computepb.InsertInstanceRequest{
		Project: c.cfg.Project, Zone: zone, RequestId: proto.String(requestID(req.Cluster, "instance/"+req.Name, gen)), InstanceResource: res,
	}, c.retry())
	if isCode(err, codeAlreadyExists) {
		return nil // a racing insert made it: adopt it
	}
	if err != nil {
		ce := k.classify(err)
		if e, ok := ce.(*clouds.Error); ok && c.cfg.KMSKeyName != "" && strings.Contains(err.Error(), "diskEncryptionKey") {
			e.Fix = fmt.Sprintf("set gcp.kms_key_name to a key of a key ring in %s that the Compute Engine service agent may use (roles/cloudkms.cryptoKeyEncrypterDecrypter)", c.cfg.Region)
		}
		return ce
	}
	if p := op.Proto(); p.GetStatus() == computepb.Operation_DONE && opFailure(p) != nil {
		return nil
	}
	return c.wait(ctx, op, k)
}

// checkRequest refuses what GCE cannot run, before any call.
func (c *Cloud) checkRequest(req clouds.InstanceRequest, object string) error {
	invalid := func(err error, fix string) error {
		return &clouds.Error{Kind: clouds.KindInvalid, Op: "instances.insert", Object: object, Err: err, Fix: fix}
	}
	if !nameRE.MatchString(req.Name) {
		return invalid(fmt.Errorf("%q is not a Compute instance name (RFC 1035: lowercase letters, digits and dashes, 1-63 characters, starting with a letter)", req.Name),
			"rename the pool or cluster so node names are lowercase letters, digits and dashes")
	}
	if cn := cmp.Or(req.ComputerName, req.Name); req.OS == "windows" && len(cn) > maxWindowsName {
		return invalid(fmt.Errorf("the Windows computer name %q has %d characters; Windows computer names have at most %d", cn, len(cn), maxWindowsName),
			"pass a computer name of at most 15 characters in the request (cluster.ComputerName derives one from the node name)")
	}
	if req.NestedVirtualization {
		return invalid(fmt.Errorf("pool %q asks for nested virtualization: %s", req.Pool, errHyperV), fixHyperV)
	}
	return nil
}

// instanceResource is the instance to insert. Its metadata holds nothing
// secret: the admin user's public SSH keys on Linux, the public half of the
// cluster's windows-keys RSA key on Windows, and the switch that lets the
// guest agent publish host keys as guest attributes.
func (c *Cloud) instanceResource(ctx context.Context, req clouds.InstanceRequest, zone string) (*computepb.Instance, error) {
	object := fmt.Sprintf("instance %q in %s", req.Name, zone)
	image := req.Image
	if image == "" {
		var err error
		if image, err = imageOf(req.OS, req.WindowsVersion); err != nil {
			return nil, &clouds.Error{Kind: clouds.KindInvalid, Op: "instances.insert", Object: object, Err: err, Fix: "set the pool's os and windows_version, or image"}
		}
	}
	labels := map[string]string{}
	labels[LabelCluster], labels[LabelNode], labels[LabelPool], labels[LabelRole] = labelValue(req.Cluster), labelValue(req.Name), labelValue(req.Pool), labelValue(req.Role)
	labels = c.withLabels(labels)
	md := []*computepb.Items{
		// https://cloud.google.com/compute/docs/metadata/manage-guest-attributes
		{Key: proto.String("enable-guest-attributes"), Value: proto.String("TRUE")},
		// Metadata SSH keys, not OS Login, grant the admin user
		// (https://cloud.google.com/compute/docs/oslogin/set-up-oslogin).
		{Key: proto.String("enable-oslogin"), Value: proto.String("FALSE")},
	}
	if req.OS == "windows" {
		wk, err := c.windowsKey(ctx, req.Cluster, req.Identity.AdminUser)
		if err != nil {
			return nil, err
		}
		md = append(md, &computepb.Items{Key: proto.String("windows-keys"), Value: proto.String(wk)})
	} else {
		var keys []string
		for _, k := range req.Identity.SSHAuthorizedKeys {
			keys = append(keys, req.Identity.AdminUser+":"+strings.TrimSpace(k))
		}
		md = append(md,
			// The guest agent makes each user of ssh-keys with passwordless
			// sudo (gh:GoogleCloudPlatform/guest-agent google_guest_agent/accounts.go).
			&computepb.Items{Key: proto.String("ssh-keys"), Value: proto.String(strings.Join(keys, "\n"))},
			&computepb.Items{Key: proto.String("block-project-ssh-keys"), Value: proto.String("TRUE")},
		)
	}
	res := &computepb.Instance{
		Name:        proto.String(req.Name),
		Description: proto.String(marker(req.Cluster)),
		MachineType: proto.String("zones/" + zone + "/machineTypes/" + req.InstanceType),
		Labels:      labels,
		Tags:        &computepb.Tags{Items: []string{roleTag(req.Cluster, req.Role)}},
		Metadata:    &computepb.Metadata{Items: md},
		Disks: []*computepb.AttachedDisk{{
			Boot: proto.Bool(true), AutoDelete: proto.Bool(true),
			InitializeParams: &computepb.AttachedDiskInitializeParams{SourceImage: proto.String(image), Labels: labels},
		}},
		NetworkInterfaces: []*computepb.NetworkInterface{{
			Network:    proto.String("projects/" + c.netProject() + "/global/networks/" + cmp.Or(req.Network.ID, c.netName(req.Cluster))),
			Subnetwork: proto.String("projects/" + c.netProject() + "/regions/" + c.cfg.Region + "/subnetworks/" + cmp.Or(req.Network.SubnetID, c.subnetName(req.Cluster))),
			// An external address for egress (packages, images); the
			// firewall admits only the cluster's ranges and the admin CIDRs.
			AccessConfigs: []*computepb.AccessConfig{{Name: proto.String("External NAT"), Type: proto.String("ONE_TO_ONE_NAT")}},
		}},
	}
	if req.DiskGB > 0 {
		res.Disks[0].InitializeParams.DiskSizeGb = proto.Int64(int64(req.DiskGB))
	}
	if c.cfg.KMSKeyName != "" {
		// The boot disk is encrypted with the customer-managed key; the
		// Compute Engine service agent uses it (computepb AttachedDisk.disk_encryption_key).
		res.Disks[0].DiskEncryptionKey = &computepb.CustomerEncryptionKey{KmsKeyName: proto.String(c.cfg.KMSKeyName)}
	}
	if req.OS == "windows" {
		res.Hostname = proto.String(windowsHostname(req))
	}
	return res, nil
}

// waitRunning starts a stopped instance and polls until it runs.
func (c *Cloud) waitRunning(ctx context.Context, in *computepb.Instance, req clouds.InstanceRequest, zone string) (clouds.Instance, error) {
	object := fmt.Sprintf("instance %q in %s", req.Name, zone)
	started := false
	for {
		switch in.GetStatus() {
		case "RUNNING":
			return toInstance(in), nil
		case "TERMINATED", "STOPPED", "SUSPENDED":
			if !started {
				k := call{op: "instances.start", object: object, pool: req.Pool, zone: zone}
				o, err := c.instances.Start(ctx, &computepb.StartInstanceRequest{Project: c.cfg.Project, Zone: zone, Instance: req.Name}, c.retry())
				if err != nil {
					return clouds.Instance{}, k.classify(err)
				}
				if err := c.wait(ctx, o, k); err != nil {
					return clouds.Instance{}, err
				}
				started = true
			}
		}
		t := time.NewTimer(c.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return clouds.Instance{}, fmt.Errorf("failed to wait for %s to run: %w", object, ctx.Err())
		case <-t.C:
		}
		got, err := c.instances.Get(ctx, &computepb.GetInstanceRequest{Project: c.cfg.Project, Zone: zone, Instance: req.Name}, c.retry())
		if err != nil {
			return clouds.Instance{}, call{op: "instances.get", object: object}.classify(err)
		}
		in = got
	}
}

// states maps GCE instance statuses
// (https://cloud.google.com/compute/docs/instances/instance-life-cycle).
var states = map[string]string{
	"PROVISIONING": clouds.StatePending, "STAGING": clouds.StatePending, "REPAIRING": clouds.StatePending,
	"RUNNING":  clouds.StateRunning,
	"STOPPING": clouds.StateStopping, "SUSPENDING": clouds.StateStopping, "PENDING_STOP": clouds.StateStopping,
	"TERMINATED": clouds.StateStopped, "STOPPED": clouds.StateStopped, "SUSPENDED": clouds.StateStopped,
}

// windowsLicense reads the Windows Server release from the boot disk's
// license, which the listing carries (AttachedDisk.licenses,
// https://cloud.google.com/compute/docs/reference/rest/v1/instances), e.g.
// projects/windows-cloud/global/licenses/windows-server-2022-dc.
var windowsLicense = regexp.MustCompile(`/windows-cloud/global/licenses/windows-server-(\d{4})-`)

func toInstance(in *computepb.Instance) clouds.Instance {
	tags := map[string]string{}
	for k, v := range in.GetLabels() {
		tags[k] = v
	}
	os := "linux"
	for _, d := range in.GetDisks() {
		for _, l := range d.GetLicenses() {
			if strings.Contains(l, "/windows-cloud/") {
				os = "windows"
			}
		}
		if d.GetBoot() && strings.Contains(d.GetSource()+d.GetInitializeParams().GetSourceImage(), "windows") {
			os = "windows"
		}
	}
	out := clouds.Instance{
		ID:      strconv.FormatUint(in.GetId(), 10),
		Cluster: in.GetLabels()[LabelCluster],
		Name:    in.GetLabels()[LabelNode], Pool: in.GetLabels()[LabelPool], Role: in.GetLabels()[LabelRole], OS: os,
		InstanceType: path.Base(in.GetMachineType()), State: cmp.Or(states[in.GetStatus()], clouds.StatePending),
		Tags: tags,
	}
	if out.Name == "" {
		out.Name = in.GetName()
	}
	for _, d := range in.GetDisks() {
		if d.GetBoot() {
			out.Image = d.GetInitializeParams().GetSourceImage()
			out.DiskGB = int(d.GetDiskSizeGb())
			for _, l := range d.GetLicenses() {
				if m := windowsLicense.FindStringSubmatch(l); m != nil {
					out.WindowsVersion = m[1]
				}
			}
		}
	}
	if nics := in.GetNetworkInterfaces(); len(nics) > 0 {
		out.PrivateIP = nics[0].GetNetworkIP()
		for _, ac := range nics[0].GetAccessConfigs() {
			out.PublicIP = ac.GetNatIP()
		}
	}
	return out
}

// Instances implements clouds.Cloud: one aggregated list over every zone,
// filtered by the cluster label and paged by PageSize, so its cost grows
// with pages, not with nodes.
func (c *Cloud) Instances(ctx context.Context, cluster string) ([]clouds.Instance, error) {
	k := call{op: "instances.aggregatedList", object: fmt.Sprintf("instances of cluster %q", cluster)}
	it := c.instances.AggregatedList(ctx, &computepb.AggregatedListInstancesRequest{
		Project:    c.cfg.Project,
		Filter:     proto.String(fmt.Sprintf("labels.%s = %q", LabelCluster, labelValue(cluster))),
		MaxResults: proto.Uint32(uint32(c.cfg.PageSize)),
	}, c.retry())
	var out []clouds.Instance
	for {
		pair, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return nil, k.classify(err)
		}
		for _, in := range pair.Value.GetInstances() {
			out = append(out, toInstance(in))
		}
	}
	if u := it.Response; u != nil {
		if list, ok := u.(*computepb.InstanceAggregatedList); ok && len(list.GetUnreachables()) > 0 {
			return nil, &clouds.Error{Kind: clouds.KindTransient, Op: k.op, Object: k.object, Err: fmt.Errorf("zones unreachable: %s", strings.Join(list.GetUnreachables(), ", "))}
		}
	}
	return out, nil
}

// DeleteInstance implements clouds.Cloud and waits until the instance and
// its boot disk are gone.
func (c *Cloud) DeleteInstance(ctx context.Context, inst clouds.Instance) error {
	zone := c.zoneFor(inst.Name)
	object := fmt.Sprintf("instance %q in %s", inst.Name, zone)
	id, err := strconv.ParseUint(inst.ID, 10, 64)
	if err != nil {
		got, gerr := c.instances.Get(ctx, &computepb.GetInstanceRequest{Project: c.cfg.Project, Zone: zone, Instance: inst.Name}, c.retry())
		if isCode(gerr, codeNotFound) {
			return nil
		}
		if gerr != nil {
			return call{op: "instances.get", object: object}.classify(gerr)
		}
		id = got.GetId()
	}
	cluster := cmp.Or(inst.Cluster, inst.Tags[LabelCluster])
	k := call{op: "instances.delete", object: object}
	op, err := c.instances.Delete(ctx, &computepb.DeleteInstanceRequest{Project: c.cfg.Project, Zone: zone, Instance: inst.Name,
		RequestId: proto.String(requestID(cluster, "delete/instance/"+inst.Name, id))}, c.retry())
	if isCode(err, codeNotFound) {
		return nil
	}
	if err != nil {
		return k.classify(err)
	}
	return c.wait(ctx, op, k)
}
