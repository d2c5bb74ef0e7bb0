package gce

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/proto"
)

// nameRE is the RFC 1035 rule every Compute resource name follows
// (computepb field docs of Instance.name, Network.name, Firewall.name).
var nameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// Label rules: keys start with a lowercase letter, keys and values hold
// lowercase letters, digits, "_" and "-", at most 63 characters, at most
// 64 labels (https://cloud.google.com/compute/docs/labeling-resources#requirements).
var (
	labelKeyRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	labelValueRE = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
	metadataKey  = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
)

// Metadata limits: a value up to 256 KB, all entries together up to 512 KB
// (https://cloud.google.com/compute/docs/metadata/setting-custom-metadata#limitations).
const (
	maxMetadataValue = 256 << 10
	maxMetadataTotal = 512 << 10
)

// machineTypeRE accepts the predefined machine types of the common
// general-purpose and compute-optimised families
// (https://cloud.google.com/compute/docs/machine-resource).
var machineTypeRE = regexp.MustCompile(`^(e2|n1|n2|n2d|n4|c2|c2d|c3|c3d|c4|c4d|t2d|t2a)-(standard|highmem|highcpu|medium|small|micro)(-\d+)?$`)

// image is what a public image boots.
type image struct {
	name, os, windowsVersion string
	sizeGB                   int64
	license                  string
}

// images are the public families clouds/gcp uses, resolved to an image
// with its disk size and license: Ubuntu images are 10 GB, Windows Server
// images 50 GB (https://cloud.google.com/compute/docs/images/os-details).
var images = map[string]image{
	"projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64": {name: "projects/ubuntu-os-cloud/global/images/ubuntu-2404-noble-amd64-v20261101", os: "linux", sizeGB: 10, license: "projects/ubuntu-os-cloud/global/licenses/ubuntu-2404-lts"},
	"projects/windows-cloud/global/images/family/windows-2019-core":       {name: "projects/windows-cloud/global/images/windows-server-2019-dc-core-v20261111", os: "windows", windowsVersion: "2019", sizeGB: 50, license: "projects/windows-cloud/global/licenses/windows-server-2019-dc"},
	"projects/windows-cloud/global/images/family/windows-2022-core":       {name: "projects/windows-cloud/global/images/windows-server-2022-dc-core-v20261111", os: "windows", windowsVersion: "2022", sizeGB: 50, license: "projects/windows-cloud/global/licenses/windows-server-2022-dc"},
	"projects/windows-cloud/global/images/family/windows-2025-core":       {name: "projects/windows-cloud/global/images/windows-server-2025-dc-core-v20261111", os: "windows", windowsVersion: "2025", sizeGB: 50, license: "projects/windows-cloud/global/licenses/windows-server-2025-dc"},
}

func resolveImage(ref string) (image, bool) {
	ref = strings.TrimPrefix(ref, selfLinkBase)
	if img, ok := images[ref]; ok {
		return img, true
	}
	for _, img := range images {
		if img.name == ref {
			return img, true
		}
	}
	return image{}, false
}

// relative turns a full or partial resource URL into "projects/p/...";
// Compute accepts both in request bodies.
func relative(project, ref string) string {
	ref = strings.TrimPrefix(ref, selfLinkBase)
	if !strings.HasPrefix(ref, "projects/") {
		ref = "projects/" + project + "/" + ref
	}
	return ref
}

func (s *Server) zoneKnown(zone string) bool { return slices.Contains(s.opts.Zones, zone) }

// ----- instances -----

func (s *Server) insertInstance(r *http.Request, c *call) (proto.Message, *Error, func()) {
	if !s.zoneKnown(c.zone) {
		return nil, notFound("projects/" + c.project + "/zones/" + c.zone), nil
	}
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	in := &computepb.Instance{}
	if e := readProto(r, in); e != nil {
		return nil, e, nil
	}
	img, e := s.validateInstance(c, in)
	if e != nil {
		return nil, e, nil
	}
	key := c.zone + "/" + in.GetName()
	res := "projects/" + c.project + "/zones/" + c.zone + "/instances/" + in.GetName()
	if s.st.instances[key] != nil || s.st.reserved["instance/"+key] {
		return nil, alreadyExists(res), nil
	}
	if s.st.disks[key] != nil {
		// The boot disk takes the instance's name; a leftover disk blocks it.
		return nil, alreadyExists("projects/" + c.project + "/zones/" + c.zone + "/disks/" + in.GetName()), nil
	}
	s.st.reserved["instance/"+key] = true
	id := s.st.id()
	machineType := lastSegment(in.GetMachineType())
	stockout := s.stockout(machineType, c.zone)
	op := s.startOperation(c, reqID, "insert", res, id, func() (*opFailure, func()) {
		delete(s.st.reserved, "instance/"+key)
		if stockout {
			// A stockout arrives in the DONE operation
			// (gh:CCExtractor/sample-platform#901).
			return &opFailure{code: "ZONE_RESOURCE_POOL_EXHAUSTED", message: fmt.Sprintf("The zone 'projects/%s/zones/%s' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.", c.project, c.zone)}, nil
		}
		s.createInstance(c, in, img, id)
		return nil, nil
	})
	return op, nil, nil
}

func (s *Server) validateInstance(c *call, in *computepb.Instance) (image, *Error) {
	if !nameRE.MatchString(in.GetName()) {
		return image{}, invalidField("resource.name", in.GetName())
	}
	if h := in.GetHostname(); h != "" && !validHostname(h) {
		return image{}, invalidField("resource.hostname", h)
	}
	mt := in.GetMachineType()
	if mt == "" {
		return image{}, badRequest("required", "Required field 'resource.machineType' not specified")
	}
	if parts := strings.Split(strings.TrimPrefix(mt, selfLinkBase), "/"); len(parts) >= 4 && parts[len(parts)-4] == "zones" && parts[len(parts)-3] != c.zone {
		return image{}, invalidField("resource.machineType", mt)
	}
	if !machineTypeRE.MatchString(lastSegment(mt)) {
		return image{}, invalidField("resource.machineType", mt)
	}
	if e := validateLabels("resource.labels", in.GetLabels()); e != nil {
		return image{}, e
	}
	for _, t := range in.GetTags().GetItems() {
		if !nameRE.MatchString(t) {
			return image{}, invalidField("resource.tags.items", t)
		}
	}
	total := 0
	for _, it := range in.GetMetadata().GetItems() {
		if !metadataKey.MatchString(it.GetKey()) {
			return image{}, invalidField("resource.metadata.items.key", it.GetKey())
		}
		if len(it.GetValue()) > maxMetadataValue {
			return image{}, badRequest("invalid", fmt.Sprintf("Invalid value for field 'resource.metadata': the value of '%s' exceeds the maximum size of 256 KB.", it.GetKey()))
		}
		total += len(it.GetKey()) + len(it.GetValue())
	}
	if total > maxMetadataTotal {
		return image{}, badRequest("invalid", "Invalid value for field 'resource.metadata': metadata exceeds the maximum total size of 512 KB.")
	}
	var boot []*computepb.AttachedDisk
	for _, d := range in.GetDisks() {
		if d.GetBoot() {
			boot = append(boot, d)
		}
	}
	if len(boot) != 1 {
		return image{}, badRequest("invalid", "Invalid value for field 'resource.disks': exactly one boot disk is required.")
	}
	src := boot[0].GetInitializeParams().GetSourceImage()
	img, ok := resolveImage(src)
	if !ok {
		return image{}, notFound(strings.TrimPrefix(src, selfLinkBase))
	}
	if k := boot[0].GetDiskEncryptionKey(); k != nil {
		// A disk's CMEK is a Cloud KMS key of the disk's region, or a
		// global one (gcloud compute disks update-kms-key's example moves a
		// zonal disk to a global key): a regional key's material stays in
		// its region (https://cloud.google.com/kms/docs/locations).
		field := "resource.disks[0].diskEncryptionKey.kmsKeyName"
		loc, ok := kmsLocation(k.GetKmsKeyName())
		if !ok || k.GetRawKey() != "" || k.GetRsaEncryptedKey() != "" {
			return image{}, invalidField(field, k.GetKmsKeyName())
		}
		if loc != "global" && loc != regionOfZone(c.zone) {
			return image{}, badRequest("invalid", fmt.Sprintf("Invalid value for field '%s': '%s'. The Cloud KMS key in location '%s' cannot protect a disk in zone '%s'.", field, k.GetKmsKeyName(), loc, c.zone))
		}
	}
	if size := boot[0].GetInitializeParams().GetDiskSizeGb(); size != 0 && size < img.sizeGB {
		return image{}, badRequest("invalid", fmt.Sprintf("Invalid value for field 'resource.disks[0].initializeParams.diskSizeGb': '%d'. Requested disk size cannot be smaller than the image size (%d GB)", size, img.sizeGB))
	}
	if in.GetAdvancedMachineFeatures().GetEnableNestedVirtualization() && img.os == "windows" {
		// "You can't use Windows Server images" with nested virtualization
		// (https://cloud.google.com/compute/docs/instances/nested-virtualization/overview#restrictions).
		return image{}, invalidField("resource.advancedMachineFeatures.enableNestedVirtualization", "true")
	}
	if len(in.GetNetworkInterfaces()) == 0 {
		return image{}, badRequest("required", "Required field 'resource.networkInterfaces' not specified")
	}
	ni := in.GetNetworkInterfaces()[0]
	nwProject, nwKey := s.netRef(c.project, ni.GetNetwork())
	if ni.GetNetwork() != "" && s.st.networks[nwKey] == nil {
		return image{}, notFound(relative(c.project, ni.GetNetwork()))
	}
	subProject, subKey := s.netRef(c.project, ni.GetSubnetwork())
	sub := s.st.subnetworks[subKey]
	if sub == nil || !strings.Contains(relative(c.project, ni.GetSubnetwork()), "/regions/"+s.opts.Region+"/") {
		return image{}, notFound(relative(c.project, ni.GetSubnetwork()))
	}
	// An instance may use another project's subnetwork only when that
	// project is a Shared VPC host and the instance's project one of its
	// service projects (https://cloud.google.com/vpc/docs/shared-vpc);
	// otherwise Compute refuses the reference
	// (gh:tranquilitybase-io/tb-gcp#507, gh:hashicorp/terraform-provider-google#7368).
	for _, p := range []string{nwProject, subProject} {
		if !s.mayUse(c.project, p) {
			return image{}, badRequest("invalid", fmt.Sprintf("Invalid value for field 'resource.networkInterfaces[0].subnetwork': '%s'. Cross-project references for this resource are not allowed.", ni.GetSubnetwork()))
		}
	}
	if ni.GetNetwork() != "" && relative(c.project, sub.GetNetwork()) != relative(c.project, ni.GetNetwork()) {
		return image{}, invalidField("resource.networkInterfaces[0].subnetwork", ni.GetSubnetwork())
	}
	return img, nil
}

// validHostname is the custom hostname rule: RFC 1035 labels, at least two,
// at most 253 characters in all (computepb Instance.Hostname;
// https://cloud.google.com/compute/docs/instances/custom-hostname-vm).
func validHostname(h string) bool {
	labels := strings.Split(h, ".")
	if len(h) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !nameRE.MatchString(l) {
			return false
		}
	}
	return true
}

func validateLabels(field string, labels map[string]string) *Error {
	if len(labels) > 64 {
		return badRequest("invalid", "Invalid value for field '"+field+"': at most 64 labels are allowed.")
	}
	for k, v := range labels {
		if !labelKeyRE.MatchString(k) {
			return badRequest("invalid", fmt.Sprintf("Invalid value for field '%s': ''. Label key '%s' violates format constraints. The key must start with a lowercase character, can only contain lowercase letters, numeric characters, underscores and dashes. The key can be at most 63 characters long.", field, k))
		}
		if !labelValueRE.MatchString(v) {
			return badRequest("invalid", fmt.Sprintf("Invalid value for field '%s': ''. Label value '%s' violates format constraints. The value can only contain lowercase letters, numeric characters, underscores and dashes. The value can be at most 63 characters long.", field, v))
		}
	}
	return nil
}

// createInstance makes the instance and its boot disk; it boots
// PROVISIONING, STAGING, RUNNING over BootDelay.
func (s *Server) createInstance(c *call, req *computepb.Instance, img image, id uint64) {
	key := c.zone + "/" + req.GetName()
	link := selfLinkBase + "projects/" + c.project + "/zones/" + c.zone
	ni := req.GetNetworkInterfaces()[0]
	_, subKey := s.netRef(c.project, ni.GetSubnetwork())
	sub := s.st.subnetworks[subKey]
	ip := s.nextAddress(sub.GetSelfLink(), sub.GetIpCidrRange())
	out := &computepb.Instance{
		Kind: proto.String("compute#instance"), Id: proto.Uint64(id), Name: req.Name, Description: req.Description, Hostname: req.Hostname,
		CreationTimestamp: proto.String(time.Now().Format(time.RFC3339Nano)),
		Zone:              proto.String(link), MachineType: proto.String(link + "/machineTypes/" + lastSegment(req.GetMachineType())),
		Status: proto.String("PROVISIONING"), SelfLink: proto.String(link + "/instances/" + req.GetName()),
		Labels: req.GetLabels(), LabelFingerprint: proto.String(fingerprint(req.GetLabels())),
		Tags:                    &computepb.Tags{Items: req.GetTags().GetItems(), Fingerprint: proto.String(fingerprint(req.GetTags().GetItems()))},
		Metadata:                &computepb.Metadata{Kind: proto.String("compute#metadata"), Items: req.GetMetadata().GetItems(), Fingerprint: proto.String(fingerprint(req.GetMetadata().GetItems()))},
		AdvancedMachineFeatures: req.AdvancedMachineFeatures,
		CpuPlatform:             proto.String("Intel Cascade Lake"),
	}
	nic := &computepb.NetworkInterface{
		Kind: proto.String("compute#networkInterface"), Name: proto.String("nic0"),
		Network:    proto.String(selfLinkBase + relative(c.project, sub.GetNetwork())),
		Subnetwork: proto.String(sub.GetSelfLink()), NetworkIP: proto.String(ip.String()),
	}
	for _, ac := range ni.GetAccessConfigs() {
		pub := s.st.nextPublic
		s.st.nextPublic = pub.Next()
		nic.AccessConfigs = append(nic.AccessConfigs, &computepb.AccessConfig{Kind: proto.String("compute#accessConfig"), Name: ac.Name,
			Type: proto.String("ONE_TO_ONE_NAT"), NatIP: proto.String(pub.String()), NetworkTier: proto.String("PREMIUM")})
	}
	out.NetworkInterfaces = []*computepb.NetworkInterface{nic}
	bd := req.GetDisks()[0]
	size := bd.GetInitializeParams().GetDiskSizeGb()
	if size == 0 {
		size = img.sizeGB
	}
	// GET returns the attached disk by its source, never initializeParams
	// (input only, https://cloud.google.com/compute/docs/reference/rest/v1/instances).
	out.Disks = []*computepb.AttachedDisk{{
		Kind: proto.String("compute#attachedDisk"), Type: proto.String("PERSISTENT"), Mode: proto.String("READ_WRITE"),
		Source: proto.String(link + "/disks/" + req.GetName()), DeviceName: proto.String("persistent-disk-0"), Index: proto.Int32(0),
		Boot: proto.Bool(true), AutoDelete: proto.Bool(bd.GetAutoDelete()), DiskSizeGb: proto.Int64(size), Interface: proto.String("SCSI"),
		Licenses: []string{selfLinkBase + img.license},
	}}
	kmsKey := bd.GetDiskEncryptionKey().GetKmsKeyName()
	if kmsKey != "" {
		// GET names the key version that encrypted the disk (computepb CustomerEncryptionKey.kms_key_name).
		out.Disks[0].DiskEncryptionKey = &computepb.CustomerEncryptionKey{KmsKeyName: proto.String(kmsKey + "/cryptoKeyVersions/1")}
	}
	s.st.disks[key] = &disk{name: req.GetName(), zone: c.zone, autoDelete: bd.GetAutoDelete(), sizeGB: size, labels: bd.GetInitializeParams().GetLabels(), kmsKey: kmsKey}
	in := &instance{pb: out, zone: c.zone, image: img, attrs: map[string]string{}}
	s.st.instances[key] = in
	s.boot(in)
}

// boot moves an instance through STAGING to RUNNING; the first time it
// runs, the modelled guest agent does its first-boot work.
func (s *Server) boot(in *instance) {
	s.after(s.opts.BootDelay/2, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if in.pb.GetStatus() == "PROVISIONING" {
			in.pb.Status = proto.String("STAGING")
		}
	})
	s.after(s.opts.BootDelay, func() {
		s.mu.Lock()
		if in.pb.GetStatus() != "STAGING" && in.pb.GetStatus() != "PROVISIONING" || s.st.instances[in.zone+"/"+in.pb.GetName()] != in {
			s.mu.Unlock()
			return
		}
		in.pb.Status = proto.String("RUNNING")
		if !in.booted {
			in.booted = true
			s.firstBoot(in)
		}
		snap := in.snapshot()
		s.mu.Unlock()
		if s.opts.OnRunning != nil {
			s.opts.OnRunning(snap)
		}
	})
}

func (s *Server) nextAddress(subnet, cidr string) netip.Addr {
	ip, ok := s.st.nextIP[subnet]
	if !ok {
		p := netip.MustParsePrefix(cidr).Masked()
		// The first two addresses are the network and its gateway
		// (https://cloud.google.com/vpc/docs/subnets#unusable-ip-addresses-in-every-subnet).
		ip = p.Addr().Next().Next()
	}
	s.st.nextIP[subnet] = ip.Next()
	return ip
}

func fingerprint(v any) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(v)))[:min(12, len(fmt.Sprint(v))+1)]
}

func (s *Server) findInstance(c *call) (*instance, *Error) {
	if !s.zoneKnown(c.zone) {
		return nil, notFound("projects/" + c.project + "/zones/" + c.zone)
	}
	in := s.st.instances[c.zone+"/"+c.name]
	if in == nil {
		return nil, notFound("projects/" + c.project + "/zones/" + c.zone + "/instances/" + c.name)
	}
	return in, nil
}

func (s *Server) getInstance(r *http.Request, c *call) (proto.Message, *Error, func()) {
	in, e := s.findInstance(c)
	if e != nil {
		return nil, e, nil
	}
	return clone(in.pb), nil, nil
}

func (s *Server) deleteInstance(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	in, e := s.findInstance(c)
	if e != nil {
		return nil, e, nil
	}
	in.pb.Status = proto.String("STOPPING")
	key := c.zone + "/" + c.name
	op := s.startOperation(c, reqID, "delete", strings.TrimPrefix(in.pb.GetSelfLink(), selfLinkBase), in.pb.GetId(), func() (*opFailure, func()) {
		if s.st.instances[key] != in {
			return nil, nil
		}
		delete(s.st.instances, key)
		// A boot disk with autoDelete goes with its instance; without, it stays (and is billed).
		if d := s.st.disks[key]; d != nil && d.autoDelete {
			delete(s.st.disks, key)
		}
		in.pb.Status = proto.String("TERMINATED")
		snap := in.snapshot()
		grouped := s.dropMember(strings.TrimPrefix(in.pb.GetSelfLink(), selfLinkBase))
		return nil, func() {
			if s.opts.OnDeleted != nil {
				s.opts.OnDeleted(snap)
			}
			if grouped {
				s.lbNotify()
			}
		}
	})
	return op, nil, nil
}

func (s *Server) startInstance(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	in, e := s.findInstance(c)
	if e != nil {
		return nil, e, nil
	}
	op := s.startOperation(c, reqID, "start", strings.TrimPrefix(in.pb.GetSelfLink(), selfLinkBase), in.pb.GetId(), func() (*opFailure, func()) {
		if in.pb.GetStatus() == "TERMINATED" {
			in.pb.Status = proto.String("STAGING")
			s.boot(in)
		}
		return nil, nil
	})
	return op, nil, nil
}

// listInstances is instances.list in one zone.
func (s *Server) listInstances(r *http.Request, c *call) (proto.Message, *Error, func()) {
	if !s.zoneKnown(c.zone) {
		return nil, notFound("projects/" + c.project + "/zones/" + c.zone), nil
	}
	all, e := s.filtered(r, c.zone)
	if e != nil {
		return nil, e, nil
	}
	page, next, e := pageOf(r, all)
	if e != nil {
		return nil, e, nil
	}
	out := &computepb.InstanceList{Kind: proto.String("compute#instanceList"), Id: proto.String("projects/" + c.project + "/zones/" + c.zone + "/instances"), Items: page}
	if next != "" {
		out.NextPageToken = proto.String(next)
	}
	return out, nil, nil
}

// aggregatedList is instances.aggregatedList: every zone, keyed
// "zones/<zone>", each with its instances or a NO_RESULTS_ON_PAGE warning.
func (s *Server) aggregatedList(r *http.Request, c *call) (proto.Message, *Error, func()) {
	all, e := s.filtered(r, "")
	if e != nil {
		return nil, e, nil
	}
	page, next, e := pageOf(r, all)
	if e != nil {
		return nil, e, nil
	}
	out := &computepb.InstanceAggregatedList{Kind: proto.String("compute#instanceAggregatedList"), Id: proto.String("projects/" + c.project + "/aggregated/instances"),
		Items: map[string]*computepb.InstancesScopedList{}}
	for _, z := range s.opts.Zones {
		out.Items["zones/"+z] = &computepb.InstancesScopedList{}
	}
	for _, in := range page {
		sl := out.Items["zones/"+lastSegment(in.GetZone())]
		sl.Instances = append(sl.Instances, in)
	}
	for _, sl := range out.Items {
		if len(sl.Instances) == 0 {
			sl.Warning = &computepb.Warning{Code: proto.String("NO_RESULTS_ON_PAGE"), Message: proto.String("There are no results for scope on this page.")}
		}
	}
	if next != "" {
		out.NextPageToken = proto.String(next)
	}
	return out, nil, nil
}

// filtered returns the instances (of one zone, or all) matching the
// request's filter, ordered by zone and name.
func (s *Server) filtered(r *http.Request, zone string) ([]*computepb.Instance, *Error) {
	match, e := parseFilter(r.URL.Query().Get("filter"))
	if e != nil {
		return nil, e
	}
	var keys []string
	for k, in := range s.st.instances {
		if (zone == "" || in.zone == zone) && match(in.pb) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]*computepb.Instance, 0, len(keys))
	for _, k := range keys {
		out = append(out, clone(s.st.instances[k].pb))
	}
	return out, nil
}

// filterTermRE is one comparison of the list filter syntax, "field op
// value", value quoted or bare; several terms are joined by AND or by
// parenthesised juxtaposition
// (https://cloud.google.com/compute/docs/reference/rest/v1/instances/aggregatedList, filter).
var filterTermRE = regexp.MustCompile(`^\(?\s*([a-zA-Z][a-zA-Z0-9_.\-]*)\s*(=|!=|eq|ne)\s*(?:"([^"]*)"|([^\s()"]+))\s*\)?$`)

func parseFilter(f string) (func(*computepb.Instance) bool, *Error) {
	f = strings.TrimSpace(f)
	if f == "" {
		return func(*computepb.Instance) bool { return true }, nil
	}
	var terms []string
	for _, part := range regexp.MustCompile(`\)\s*\(|\s+AND\s+`).Split(f, -1) {
		terms = append(terms, strings.TrimSpace(part))
	}
	type term struct {
		field, op, value string
	}
	var ts []term
	for _, t := range terms {
		m := filterTermRE.FindStringSubmatch(t)
		if m == nil {
			return nil, invalidField("filter", f)
		}
		v := m[3]
		if m[4] != "" {
			v = m[4]
		}
		ts = append(ts, term{m[1], m[2], v})
	}
	return func(in *computepb.Instance) bool {
		for _, t := range ts {
			var got string
			switch {
			case strings.HasPrefix(t.field, "labels."):
				got = in.GetLabels()[strings.TrimPrefix(t.field, "labels.")]
			case t.field == "name":
				got = in.GetName()
			case t.field == "status":
				got = in.GetStatus()
			default:
				return false
			}
			eq := got == t.value
			if t.op == "eq" || t.op == "ne" {
				re, err := regexp.Compile("^(?:" + t.value + ")$")
				eq = err == nil && re.MatchString(got)
			}
			if eq != (t.op == "=" || t.op == "eq") {
				return false
			}
		}
		return true
	}, nil
}

// maxResults: "Acceptable values are 0 to 500, inclusive. (Default: 500)"
// (Compute list methods' maxResults).
const maxResults = 500

func pageOf[T any](r *http.Request, all []T) ([]T, string, *Error) {
	q := r.URL.Query()
	size := maxResults
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxResults {
			return nil, "", invalidField("maxResults", v)
		}
		if n > 0 {
			size = n
		}
	}
	start := 0
	if tok := q.Get("pageToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		n, aerr := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || aerr != nil || n < 0 || n > len(all) {
			return nil, "", invalidField("pageToken", tok)
		}
		start = n
	}
	end := min(start+size, len(all))
	next := ""
	if end < len(all) {
		next = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	return all[start:end], next, nil
}

// ----- networks -----

func (s *Server) insertNetwork(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	nw := &computepb.Network{}
	if e := readProto(r, nw); e != nil {
		return nil, e, nil
	}
	if !nameRE.MatchString(nw.GetName()) {
		return nil, invalidField("resource.name", nw.GetName()), nil
	}
	if nw.AutoCreateSubnetworks == nil {
		// Without it Compute would make a legacy network, which new
		// projects cannot (https://cloud.google.com/vpc/docs/legacy).
		return nil, badRequest("invalid", "Invalid value for field 'resource.autoCreateSubnetworks': ''. Legacy networks are not supported; set autoCreateSubnetworks."), nil
	}
	res := "projects/" + c.project + "/global/networks/" + nw.GetName()
	key := s.key(c.project, nw.GetName())
	if s.st.networks[key] != nil || s.st.reserved["network/"+key] {
		return nil, alreadyExists(res), nil
	}
	s.st.reserved["network/"+key] = true
	id := s.st.id()
	return s.startOperation(c, reqID, "insert", res, id, func() (*opFailure, func()) {
		delete(s.st.reserved, "network/"+key)
		out := clone(nw)
		out.Kind, out.Id, out.SelfLink = proto.String("compute#network"), proto.Uint64(id), proto.String(selfLinkBase+res)
		out.CreationTimestamp = proto.String(time.Now().Format(time.RFC3339Nano))
		s.st.networks[key] = out
		return nil, nil
	}), nil, nil
}

func (s *Server) getNetwork(r *http.Request, c *call) (proto.Message, *Error, func()) {
	nw := s.st.networks[s.key(c.project, c.name)]
	if nw == nil {
		return nil, notFound(c.resource), nil
	}
	out := clone(nw)
	for _, sub := range s.st.subnetworks {
		if sub.GetNetwork() == nw.GetSelfLink() {
			out.Subnetworks = append(out.Subnetworks, sub.GetSelfLink())
		}
	}
	return out, nil, nil
}

// deleteNetwork fails in its operation while a subnetwork, firewall rule
// or instance uses the network, with RESOURCE_IN_USE_BY_ANOTHER_RESOURCE
// ("The network resource ... is already being used by ...", as Terraform
// users report it from the operation).
func (s *Server) deleteNetwork(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	key := s.key(c.project, c.name)
	nw := s.st.networks[key]
	if nw == nil {
		return nil, notFound(c.resource), nil
	}
	return s.startOperation(c, reqID, "delete", c.resource, nw.GetId(), func() (*opFailure, func()) {
		for _, sub := range s.st.subnetworks {
			if sub.GetNetwork() == nw.GetSelfLink() {
				return inUse(c.resource, strings.TrimPrefix(sub.GetSelfLink(), selfLinkBase)), nil
			}
		}
		for _, fw := range s.st.firewalls {
			if fw.GetNetwork() == nw.GetSelfLink() {
				return inUse(c.resource, strings.TrimPrefix(fw.GetSelfLink(), selfLinkBase)), nil
			}
		}
		delete(s.st.networks, key)
		return nil, nil
	}), nil, nil
}

func inUse(what, by string) *opFailure {
	return &opFailure{code: "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE", message: fmt.Sprintf("The %s resource '%s' is already being used by '%s'", kindOf(what), what, by)}
}

func kindOf(resource string) string {
	parts := strings.Split(resource, "/")
	if len(parts) < 2 {
		return "resource"
	}
	return strings.TrimSuffix(parts[len(parts)-2], "s")
}

// ----- subnetworks -----

func (s *Server) insertSubnetwork(r *http.Request, c *call) (proto.Message, *Error, func()) {
	if c.region != s.opts.Region {
		return nil, notFound("projects/" + c.project + "/regions/" + c.region), nil
	}
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	sub := &computepb.Subnetwork{}
	if e := readProto(r, sub); e != nil {
		return nil, e, nil
	}
	if !nameRE.MatchString(sub.GetName()) {
		return nil, invalidField("resource.name", sub.GetName()), nil
	}
	nwProject, nwKey := s.netRef(c.project, sub.GetNetwork())
	if nwProject != c.project {
		return nil, crossProject("resource.network", sub.GetNetwork()), nil
	}
	nw := s.st.networks[nwKey]
	if nw == nil {
		return nil, notFound(relative(c.project, sub.GetNetwork())), nil
	}
	// Subnet ranges: a valid IPv4 CIDR of prefix length 8 to 29 that
	// overlaps no other subnet of the network
	// (https://cloud.google.com/vpc/docs/subnets#valid-ranges).
	p, err := netip.ParsePrefix(sub.GetIpCidrRange())
	if err != nil || !p.Addr().Is4() || p.Bits() < 8 || p.Bits() > 29 || p.Masked() != p {
		return nil, invalidField("resource.ipCidrRange", sub.GetIpCidrRange()), nil
	}
	for _, other := range s.st.subnetworks {
		if other.GetNetwork() == nw.GetSelfLink() && netip.MustParsePrefix(other.GetIpCidrRange()).Overlaps(p) {
			return nil, badRequest("invalid", fmt.Sprintf("Invalid IPCidrRange: %s conflicts with existing subnetwork '%s' in region '%s'.", p, other.GetName(), c.region)), nil
		}
	}
	res := "projects/" + c.project + "/regions/" + c.region + "/subnetworks/" + sub.GetName()
	key := s.key(c.project, sub.GetName())
	if s.st.subnetworks[key] != nil || s.st.reserved["subnetwork/"+key] {
		return nil, alreadyExists(res), nil
	}
	s.st.reserved["subnetwork/"+key] = true
	id := s.st.id()
	return s.startOperation(c, reqID, "insert", res, id, func() (*opFailure, func()) {
		delete(s.st.reserved, "subnetwork/"+key)
		out := clone(sub)
		out.Kind, out.Id, out.SelfLink = proto.String("compute#subnetwork"), proto.Uint64(id), proto.String(selfLinkBase+res)
		out.Network = proto.String(selfLinkBase + relative(c.project, sub.GetNetwork()))
		out.Region = proto.String(selfLinkBase + "projects/" + c.project + "/regions/" + c.region)
		out.GatewayAddress = proto.String(p.Addr().Next().String())
		out.CreationTimestamp = proto.String(time.Now().Format(time.RFC3339Nano))
		s.st.subnetworks[key] = out
		return nil, nil
	}), nil, nil
}

func (s *Server) getSubnetwork(r *http.Request, c *call) (proto.Message, *Error, func()) {
	sub := s.st.subnetworks[s.key(c.project, c.name)]
	if c.region != s.opts.Region || sub == nil {
		return nil, notFound(c.resource), nil
	}
	return clone(sub), nil, nil
}

func (s *Server) deleteSubnetwork(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	key := s.key(c.project, c.name)
	sub := s.st.subnetworks[key]
	if c.region != s.opts.Region || sub == nil {
		return nil, notFound(c.resource), nil
	}
	return s.startOperation(c, reqID, "delete", c.resource, sub.GetId(), func() (*opFailure, func()) {
		for _, in := range s.st.instances {
			for _, ni := range in.pb.GetNetworkInterfaces() {
				if ni.GetSubnetwork() == sub.GetSelfLink() {
					return inUse(c.resource, strings.TrimPrefix(in.pb.GetSelfLink(), selfLinkBase)), nil
				}
			}
		}
		delete(s.st.subnetworks, key)
		return nil, nil
	}), nil, nil
}

// ----- firewalls -----

var protocols = map[string]bool{"tcp": true, "udp": true, "icmp": true, "esp": true, "ah": true, "sctp": true, "ipip": true, "all": true}

// validateFirewall: ingress rules name source ranges or tags, protocols by
// name or number, and ports only for tcp, udp and sctp
// (https://cloud.google.com/firewall/docs/firewalls#protocols_and_ports).
func validateFirewall(fw *computepb.Firewall) *Error {
	if !nameRE.MatchString(fw.GetName()) {
		return invalidField("resource.name", fw.GetName())
	}
	for _, r := range fw.GetSourceRanges() {
		if _, err := netip.ParsePrefix(r); err != nil {
			if _, err := netip.ParseAddr(r); err != nil {
				return invalidField("resource.sourceRanges", r)
			}
		}
	}
	if len(fw.GetAllowed()) == 0 && len(fw.GetDenied()) == 0 {
		return badRequest("invalid", "Invalid value for field 'resource': exactly one of 'allowed' or 'denied' must be specified.")
	}
	for _, a := range fw.GetAllowed() {
		p := a.GetIPProtocol()
		if _, err := strconv.Atoi(p); err != nil && !protocols[p] {
			return invalidField("resource.allowed[].IPProtocol", p)
		}
		if len(a.GetPorts()) > 0 && p != "tcp" && p != "udp" && p != "sctp" {
			return invalidField("resource.allowed[].ports", strings.Join(a.GetPorts(), ","))
		}
		for _, port := range a.GetPorts() {
			if !validPorts(port) {
				return invalidField("resource.allowed[].ports", port)
			}
		}
	}
	for _, t := range append(fw.GetSourceTags(), fw.GetTargetTags()...) {
		if !nameRE.MatchString(t) {
			return invalidField("resource.sourceTags/targetTags", t)
		}
	}
	return nil
}

// validPorts: a port or a range "low-high" of ports 0 to 65535
// (https://cloud.google.com/firewall/docs/firewalls#protocols_and_ports).
func validPorts(s string) bool {
	low, high, isRange := strings.Cut(s, "-")
	if !isRange {
		high = low
	}
	a, err1 := strconv.Atoi(low)
	b, err2 := strconv.Atoi(high)
	return err1 == nil && err2 == nil && 0 <= a && a <= b && b <= 65535
}

func (s *Server) insertFirewall(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	fw := &computepb.Firewall{}
	if e := readProto(r, fw); e != nil {
		return nil, e, nil
	}
	if e := validateFirewall(fw); e != nil {
		return nil, e, nil
	}
	if fw.GetNetwork() == "" {
		fw.Network = proto.String("global/networks/default")
	}
	// A firewall rule is in its network's project: a Shared VPC network's
	// rules are made in the host project
	// (https://cloud.google.com/vpc/docs/shared-vpc#firewall_rules_and_shared_vpc);
	// a service project's rule naming the host's network is refused
	// (gh:terraform-google-modules/terraform-google-bastion-host#5).
	nwProject, nwKey := s.netRef(c.project, fw.GetNetwork())
	if nwProject != c.project {
		return nil, crossProject("resource.network", fw.GetNetwork()), nil
	}
	if s.st.networks[nwKey] == nil {
		return nil, notFound(relative(c.project, fw.GetNetwork())), nil
	}
	res := "projects/" + c.project + "/global/firewalls/" + fw.GetName()
	key := s.key(c.project, fw.GetName())
	if s.st.firewalls[key] != nil || s.st.reserved["firewall/"+key] {
		return nil, alreadyExists(res), nil
	}
	s.st.reserved["firewall/"+key] = true
	id := s.st.id()
	return s.startOperation(c, reqID, "insert", res, id, func() (*opFailure, func()) {
		delete(s.st.reserved, "firewall/"+key)
		out := clone(fw)
		out.Kind, out.Id, out.SelfLink = proto.String("compute#firewall"), proto.Uint64(id), proto.String(selfLinkBase+res)
		out.Network = proto.String(selfLinkBase + relative(c.project, fw.GetNetwork()))
		if out.Direction == nil {
			out.Direction = proto.String("INGRESS")
		}
		if out.Priority == nil {
			out.Priority = proto.Int32(1000)
		}
		out.CreationTimestamp = proto.String(time.Now().Format(time.RFC3339Nano))
		s.st.firewalls[key] = out
		return nil, nil
	}), nil, nil
}

func (s *Server) getFirewall(r *http.Request, c *call) (proto.Message, *Error, func()) {
	fw := s.st.firewalls[s.key(c.project, c.name)]
	if fw == nil {
		return nil, notFound(c.resource), nil
	}
	return clone(fw), nil, nil
}

// patchFirewall applies JSON merge patch semantics: fields present in the
// body replace the rule's, lists whole
// (https://cloud.google.com/compute/docs/reference/rest/v1/firewalls/patch).
func (s *Server) patchFirewall(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	key := s.key(c.project, c.name)
	fw := s.st.firewalls[key]
	if fw == nil {
		return nil, notFound(c.resource), nil
	}
	patch := &computepb.Firewall{}
	if e := readProto(r, patch); e != nil {
		return nil, e, nil
	}
	if patch.Name != nil && patch.GetName() != c.name {
		return nil, invalidField("resource.name", patch.GetName()), nil
	}
	next := clone(fw)
	if patch.SourceRanges != nil {
		next.SourceRanges = patch.SourceRanges
	}
	if patch.TargetTags != nil {
		next.TargetTags = patch.TargetTags
	}
	if patch.Allowed != nil {
		next.Allowed = patch.Allowed
	}
	if patch.Description != nil {
		next.Description = patch.Description
	}
	if patch.Disabled != nil {
		next.Disabled = patch.Disabled
	}
	if e := validateFirewall(next); e != nil {
		return nil, e, nil
	}
	return s.startOperation(c, reqID, "patch", c.resource, fw.GetId(), func() (*opFailure, func()) {
		if s.st.firewalls[key] != nil {
			s.st.firewalls[key] = next
		}
		return nil, nil
	}), nil, nil
}

func (s *Server) deleteFirewall(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	key := s.key(c.project, c.name)
	fw := s.st.firewalls[key]
	if fw == nil {
		return nil, notFound(c.resource), nil
	}
	return s.startOperation(c, reqID, "delete", c.resource, fw.GetId(), func() (*opFailure, func()) {
		delete(s.st.firewalls, key)
		return nil, nil
	}), nil, nil
}
