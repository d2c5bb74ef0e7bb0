package ec2

import (
	"encoding/base64"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// instanceStateCodes are EC2's numeric state codes.
var instanceStateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

// instanceTypes are the types the emulator offers: vCPUs, memory in MiB.
var instanceTypes = map[string]struct{ vcpus, mib int }{
	"t3.micro": {2, 1024}, "t3.medium": {2, 4096}, "t3.large": {2, 8192}, "t3.xlarge": {4, 16384},
	"m5.large": {2, 8192}, "m5.xlarge": {4, 16384}, "m5.2xlarge": {8, 32768},
	"m6i.large": {2, 8192}, "m6i.xlarge": {4, 16384}, "m6i.2xlarge": {8, 32768},
	"c6i.large": {2, 4096}, "c6i.xlarge": {4, 8192},
	"m8i.large": {2, 8192}, "m8i.xlarge": {4, 16384}, "m8i.2xlarge": {8, 32768}, "m8i.48xlarge": {192, 786432},
	"c8i.large": {2, 4096}, "c8i.xlarge": {4, 8192}, "c8i.2xlarge": {8, 16384},
	"r8i.large": {2, 16384}, "r8i.xlarge": {4, 32768},
	"m8i-flex.large": {2, 8192}, "m8i-flex.xlarge": {4, 16384},
	"m5.metal": {96, 393216}, "m6i.metal": {128, 524288}, "c5.metal": {96, 196608}, "i3.metal": {72, 524288},
}

// nestedCapable reports whether a type offers nested virtualisation: bare
// metal always; virtual c8i/m8i/r8i (and flex) when launched with
// CpuOptions.NestedVirtualization=enabled.
func nestedCapable(t string) (metal, virtual bool) {
	family, size, _ := strings.Cut(t, ".")
	if strings.HasPrefix(size, "metal") {
		return true, false
	}
	switch family {
	case "c8i", "m8i", "r8i", "c8i-flex", "m8i-flex", "r8i-flex":
		return false, true
	}
	return false, false
}

type xState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	GroupName        string `xml:"groupName"`
	Tenancy          string `xml:"tenancy"`
}

type xGroupRef struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type xCPUOptions struct {
	CoreCount            int    `xml:"coreCount"`
	ThreadsPerCore       int    `xml:"threadsPerCore"`
	NestedVirtualization string `xml:"nestedVirtualization,omitempty"`
}

type xEbs struct {
	VolumeID            string `xml:"volumeId"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xBlockDevice struct {
	DeviceName string `xml:"deviceName"`
	Ebs        xEbs   `xml:"ebs"`
}

type xInstance struct {
	InstanceID         string         `xml:"instanceId"`
	ImageID            string         `xml:"imageId"`
	InstanceState      xState         `xml:"instanceState"`
	PrivateDNSName     string         `xml:"privateDnsName"`
	DNSName            string         `xml:"dnsName"`
	Reason             string         `xml:"reason"`
	AmiLaunchIndex     int            `xml:"amiLaunchIndex"`
	InstanceType       string         `xml:"instanceType"`
	LaunchTime         string         `xml:"launchTime"`
	Placement          xPlacement     `xml:"placement"`
	Platform           string         `xml:"platform,omitempty"`
	Monitoring         xAssocState    `xml:"monitoring"`
	SubnetID           string         `xml:"subnetId,omitempty"`
	VpcID              string         `xml:"vpcId,omitempty"`
	PrivateIPAddress   string         `xml:"privateIpAddress,omitempty"`
	SourceDestCheck    bool           `xml:"sourceDestCheck"`
	GroupSet           []xGroupRef    `xml:"groupSet>item"`
	Architecture       string         `xml:"architecture"`
	RootDeviceType     string         `xml:"rootDeviceType"`
	RootDeviceName     string         `xml:"rootDeviceName"`
	BlockDeviceMapping []xBlockDevice `xml:"blockDeviceMapping>item"`
	VirtualizationType string         `xml:"virtualizationType"`
	ClientToken        string         `xml:"clientToken"`
	TagSet             []xTag         `xml:"tagSet>item"`
	Hypervisor         string         `xml:"hypervisor"`
	EbsOptimized       bool           `xml:"ebsOptimized"`
	CPUOptions         xCPUOptions    `xml:"cpuOptions"`
	PlatformDetails    string         `xml:"platformDetails"`
	StateReason        *xStateReason  `xml:"stateReason,omitempty"`
}

type xStateReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

func (s *Server) xInstance(in *Instance) xInstance {
	out := xInstance{
		InstanceID: in.ID, ImageID: in.ImageID,
		InstanceState: xState{instanceStateCodes[in.State], in.State},
		InstanceType:  in.InstanceType, LaunchTime: in.LaunchTime.UTC().Format("2006-01-02T15:04:05.000Z"),
		Placement: xPlacement{AvailabilityZone: in.Zone, Tenancy: "default"}, Platform: in.Platform,
		Monitoring: xAssocState{"disabled"}, SourceDestCheck: true, Architecture: "x86_64",
		RootDeviceType: "ebs", RootDeviceName: "/dev/sda1", VirtualizationType: "hvm", ClientToken: in.ClientToken,
		TagSet: xTags(in.Tags), Hypervisor: "xen", PlatformDetails: "Linux/UNIX",
		CPUOptions: xCPUOptions{CoreCount: max(instanceTypes[in.InstanceType].vcpus/2, 1), ThreadsPerCore: 2},
	}
	if in.Platform == "windows" {
		out.PlatformDetails = "Windows"
		out.RootDeviceName = "/dev/sda1"
	}
	if in.NestedVirtualization {
		out.CPUOptions.NestedVirtualization = "enabled"
	}
	if in.State != "terminated" {
		out.SubnetID, out.VpcID, out.PrivateIPAddress = in.SubnetID, in.VpcID, in.PrivateIP
		out.PrivateDNSName = "ip-" + strings.ReplaceAll(in.PrivateIP, ".", "-") + ".ec2.internal"
		for _, g := range in.SecurityIDs {
			name := ""
			if sg := s.st.groups[g]; sg != nil {
				name = sg.name
			}
			out.GroupSet = append(out.GroupSet, xGroupRef{g, name})
		}
		out.BlockDeviceMapping = []xBlockDevice{{DeviceName: out.RootDeviceName, Ebs: xEbs{VolumeID: "vol" + in.ID[1:], Status: "attached",
			AttachTime: out.LaunchTime, DeleteOnTermination: true}}}
	} else {
		out.Reason = "User initiated (" + in.changed.UTC().Format("2006-01-02 15:04:05 MST") + ")"
	}
	if in.StateReason.Code != "" && (in.State == "shutting-down" || in.State == "terminated") {
		out.Reason = ""
		out.StateReason = &xStateReason{Code: in.StateReason.Code, Message: in.StateReason.Message}
	}
	return out
}

type xReservation struct {
	ReservationID string      `xml:"reservationId"`
	OwnerID       string      `xml:"ownerId"`
	GroupSet      []xGroupRef `xml:"groupSet>item"`
	InstancesSet  []xInstance `xml:"instancesSet>item"`
}

// canonical renders the parameters that make two RunInstances calls "the
// same request" for ClientToken purposes.
func canonical(p url.Values) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		if k != "ClientToken" && k != "Action" && k != "Version" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + strings.Join(p[k], ",") + "&")
	}
	return b.String()
}

func (s *Server) runInstances(p url.Values) (any, *Error, func()) {
	token := p.Get("ClientToken")
	if len(token) > 64 {
		return nil, invalidParam("Value (%s) for parameter clientToken is invalid. Length exceeds maximum of 64 characters.", token), nil
	}
	if token != "" {
		if r := s.st.tokens[token]; r != nil {
			if r.params != canonical(p) {
				return nil, errf(http.StatusBadRequest, "IdempotentParameterMismatch", "Arguments on this idempotent request are inconsistent with arguments used in previous request(s)."), nil
			}
			return s.xReservationOf(r, r.instances), nil, nil
		}
	}
	minCount, err1 := strconv.Atoi(p.Get("MinCount"))
	maxCount, err2 := strconv.Atoi(p.Get("MaxCount"))
	if err1 != nil || err2 != nil || minCount < 1 || maxCount < minCount {
		return nil, invalidParam("Value for parameters MinCount and MaxCount is invalid: MinCount %q, MaxCount %q", p.Get("MinCount"), p.Get("MaxCount")), nil
	}
	it := p.Get("InstanceType")
	if it == "" {
		it = "m1.small"
	}
	if _, ok := instanceTypes[it]; !ok {
		return nil, invalidParam("The instance type '%s' does not exist in the %s region.", it, s.opts.Region), nil
	}
	imageID := p.Get("ImageId")
	if imageID == "" {
		return nil, missingParam("ImageId"), nil
	}
	im := s.st.images[imageID]
	if im == nil {
		return nil, errf(http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", imageID), nil
	}
	sn := s.st.subnets[p.Get("SubnetId")]
	if p.Get("SubnetId") == "" {
		return nil, errf(http.StatusBadRequest, "VPCIdNotSpecified", "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC."), nil
	}
	if sn == nil {
		return nil, notFound("InvalidSubnetID.NotFound", "subnet ID", p.Get("SubnetId")), nil
	}
	groups := list(p, "SecurityGroupId")
	for _, g := range groups {
		sg := s.st.groups[g]
		if sg == nil {
			return nil, notFound("InvalidGroup.NotFound", "security group", g), nil
		}
		if sg.vpc != sn.vpc {
			return nil, invalidParam("Security group %s and subnet %s belong to different networks.", g, sn.id), nil
		}
	}
	nested := false
	switch nv := p.Get("CpuOptions.NestedVirtualization"); nv {
	case "", "disabled":
	case "enabled":
		if _, virtual := nestedCapable(it); !virtual {
			return nil, errf(http.StatusBadRequest, "Unsupported", "Nested virtualization is not supported for instance type '%s'.", it), nil
		}
		nested = true
	default:
		return nil, invalidParam("Value (%s) for parameter cpuOptions.nestedVirtualization is invalid.", nv), nil
	}
	var userData []byte
	if ud := p.Get("UserData"); ud != "" {
		var err error
		if userData, err = base64.StdEncoding.DecodeString(ud); err != nil {
			return nil, invalidParam("Invalid BASE64 encoding of user data."), nil
		}
		if len(ud) > 16384 {
			return nil, invalidParam("User data is limited to 16384 bytes"), nil
		}
	}
	disk, encrypted, keyRef := 0, false, ""
	for i := range count(p, "BlockDeviceMapping") {
		if v, err := strconv.Atoi(p.Get(member("BlockDeviceMapping", i) + ".Ebs.VolumeSize")); err == nil {
			disk = v
		}
		e := p.Get(member("BlockDeviceMapping", i) + ".Ebs.Encrypted")
		switch e {
		case "true":
			encrypted = true
		case "", "false":
		default:
			return nil, invalidParam("Value (%s) for parameter Encrypted is invalid.", e), nil
		}
		if k := p.Get(member("BlockDeviceMapping", i) + ".Ebs.KmsKeyId"); k != "" {
			// "If KmsKeyId is specified, the encrypted state must be true"
			// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyEbsDefaultKmsKeyId.html,
			// the same rule as EbsBlockDevice's).
			if e != "true" {
				return nil, errf(http.StatusBadRequest, "InvalidParameterDependency", "The parameter KmsKeyId requires the parameter Encrypted to be set."), nil
			}
			keyRef = k
		}
	}
	// EBS "authenticates the KMS key asynchronously": a key that is not
	// valid lets RunInstances answer, and the instance then goes from
	// pending to terminated with Client.InternalError
	// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopyImage.html, KmsKeyId;
	// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshooting-launch.html#troubleshooting-launch-internal;
	// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html).
	rootKey, keyFails := "", false
	if encrypted {
		rootKey = DefaultEBSKey
	}
	if keyRef != "" {
		if arn, ok := s.resolveKey(keyRef); ok {
			rootKey = arn
		} else {
			rootKey, keyFails = keyRef, true
		}
	}
	// Metadata options as RunInstances takes them (InstanceMetadataOptionsRequest,
	// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceMetadataOptionsRequest.html):
	// HttpTokens optional|required, HttpPutResponseHopLimit 1-64, HttpEndpoint enabled|disabled.
	md := MetadataOptions{HTTPTokens: "optional", HopLimit: 1, HTTPEndpoint: "enabled"}
	switch v := p.Get("MetadataOptions.HttpTokens"); v {
	case "":
	case "optional", "required":
		md.HTTPTokens = v
	default:
		return nil, invalidParam("Value (%s) for parameter MetadataOptions.HttpTokens is invalid.", v), nil
	}
	if v := p.Get("MetadataOptions.HttpPutResponseHopLimit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return nil, invalidParam("Value (%s) for parameter MetadataOptions.HttpPutResponseHopLimit is invalid. Valid values are 1 to 64.", v), nil
		}
		md.HopLimit = n
	}
	switch v := p.Get("MetadataOptions.HttpEndpoint"); v {
	case "":
	case "enabled", "disabled":
		md.HTTPEndpoint = v
	default:
		return nil, invalidParam("Value (%s) for parameter MetadataOptions.HttpEndpoint is invalid.", v), nil
	}
	if e := badTagSpecs(p, "instance", "volume", "network-interface"); e != nil {
		return nil, e, nil
	}
	tags := tagSpecs(p, "instance")
	pfx := netip.MustParsePrefix(sn.cidr)
	r := &reservation{id: s.st.newID("r"), params: canonical(p)}
	now := time.Now()
	for i := range maxCount {
		ip := sn.next
		if !pfx.Contains(ip.Next()) {
			if i < minCount {
				return nil, errf(http.StatusBadRequest, "InsufficientFreeAddressesInSubnet", "There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", sn.id), nil
			}
			break
		}
		sn.next = ip.Next()
		in := &Instance{
			ID: s.st.newID("i"), ReservationID: r.id, ImageID: imageID, InstanceType: it, State: "pending",
			VpcID: sn.vpc, SubnetID: sn.id, Zone: sn.zone, PrivateIP: ip.String(), SecurityIDs: groups,
			UserData: userData, Platform: im.platform, NestedVirtualization: nested, DiskGB: disk,
			RootEncrypted: encrypted, RootKMSKeyID: rootKey, Metadata: md,
			ClientToken: token, LaunchTime: now, Tags: mapsClone(tags), changed: now,
		}
		s.st.instances[in.ID] = in
		r.instances = append(r.instances, in.ID)
		if keyFails {
			in.StateReason = StateReason{Code: "Client.InternalError", Message: "Client.InternalError: Client error on launch"}
			s.later(s.opts.PendingDelay, in.ID, "pending", "terminated", nil)
			continue
		}
		s.later(s.opts.PendingDelay, in.ID, "pending", "running", s.opts.OnRunning)
	}
	s.st.reservations[r.id] = r
	if token != "" {
		s.st.tokens[token] = r
	}
	return s.xReservationOf(r, r.instances), nil, nil
}

func mapsClone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *Server) xReservationOf(r *reservation, ids []string) xReservation {
	out := xReservation{ReservationID: r.id, OwnerID: AccountID}
	for _, id := range ids {
		if in := s.st.instances[id]; in != nil {
			out.InstancesSet = append(out.InstancesSet, s.xInstance(in))
		}
	}
	return out
}

// later moves an instance from one state to the next after d, and calls
// hook without the lock held. Called with s.mu held.
func (s *Server) later(d time.Duration, id, from, to string, hook func(Instance)) {
	s.timers.Add(1)
	go func() {
		defer s.timers.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		s.mu.Lock()
		in := s.st.instances[id]
		if in == nil || in.State != from {
			s.mu.Unlock()
			return
		}
		in.State, in.changed = to, time.Now()
		snap := in.clone()
		if to == "terminated" {
			s.later(s.opts.TerminatedVisible, id, "terminated", "", nil)
		}
		if to == "" {
			delete(s.st.instances, id)
		}
		s.mu.Unlock()
		if hook != nil {
			hook(snap)
		}
	}()
}

func (s *Server) describeInstances(p url.Values) (any, *Error, func()) {
	ids, e := s.selectIDs(p, "InstanceId", "InvalidInstanceID.NotFound", "instance ID", sortedKeys(s.st.instances), func(id string) (map[string]string, func(string) ([]string, bool)) {
		in := s.st.instances[id]
		return in.Tags, func(name string) ([]string, bool) {
			switch name {
			case "instance-id":
				return []string{in.ID}, true
			case "instance-state-name":
				return []string{in.State}, true
			case "instance-state-code":
				return []string{strconv.Itoa(instanceStateCodes[in.State])}, true
			case "instance-type":
				return []string{in.InstanceType}, true
			case "image-id":
				return []string{in.ImageID}, true
			case "vpc-id":
				return []string{in.VpcID}, true
			case "subnet-id":
				return []string{in.SubnetID}, true
			case "client-token":
				return []string{in.ClientToken}, true
			case "private-ip-address":
				return []string{in.PrivateIP}, true
			case "reservation-id":
				return []string{in.ReservationID}, true
			case "availability-zone":
				return []string{in.Zone}, true
			case "platform":
				return []string{in.Platform}, true
			}
			return nil, false
		}
	})
	if e != nil {
		return nil, e, nil
	}
	ids, next, e := page(p, ids, 5, 1000)
	if e != nil {
		return nil, e, nil
	}
	out := struct {
		ReservationSet []xReservation `xml:"reservationSet>item"`
		NextToken      string         `xml:"nextToken,omitempty"`
	}{NextToken: next}
	// EC2 groups the page's instances by reservation, in order of first appearance.
	index := map[string]int{}
	for _, id := range ids {
		in := s.st.instances[id]
		i, ok := index[in.ReservationID]
		if !ok {
			i = len(out.ReservationSet)
			index[in.ReservationID] = i
			out.ReservationSet = append(out.ReservationSet, xReservation{ReservationID: in.ReservationID, OwnerID: AccountID})
		}
		out.ReservationSet[i].InstancesSet = append(out.ReservationSet[i].InstancesSet, s.xInstance(in))
	}
	return out, nil, nil
}

type xStateChange struct {
	InstanceID    string `xml:"instanceId"`
	CurrentState  xState `xml:"currentState"`
	PreviousState xState `xml:"previousState"`
}

func (s *Server) terminateInstances(p url.Values) (any, *Error, func()) {
	ids := list(p, "InstanceId")
	if len(ids) == 0 {
		return nil, missingParam("InstanceId"), nil
	}
	var missing []string
	for _, id := range ids {
		if s.st.instances[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, errf(http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", ")), nil
	}
	out := struct {
		InstancesSet []xStateChange `xml:"instancesSet>item"`
	}{}
	for _, id := range ids {
		in := s.st.instances[id]
		prev := in.State
		if prev == "pending" || prev == "running" || prev == "stopped" || prev == "stopping" {
			in.State, in.changed = "shutting-down", time.Now()
			s.later(s.opts.ShuttingDownDelay, id, "shutting-down", "terminated", s.opts.OnTerminated)
		}
		out.InstancesSet = append(out.InstancesSet, xStateChange{InstanceID: id,
			CurrentState: xState{instanceStateCodes[in.State], in.State}, PreviousState: xState{instanceStateCodes[prev], prev}})
	}
	return out, nil, nil
}

type xImage struct {
	ImageID            string `xml:"imageId"`
	ImageLocation      string `xml:"imageLocation"`
	ImageState         string `xml:"imageState"`
	ImageOwnerID       string `xml:"imageOwnerId"`
	CreationDate       string `xml:"creationDate"`
	IsPublic           bool   `xml:"isPublic"`
	Architecture       string `xml:"architecture"`
	ImageType          string `xml:"imageType"`
	Platform           string `xml:"platform,omitempty"`
	PlatformDetails    string `xml:"platformDetails"`
	ImageOwnerAlias    string `xml:"imageOwnerAlias"`
	Name               string `xml:"name"`
	Description        string `xml:"description"`
	RootDeviceType     string `xml:"rootDeviceType"`
	RootDeviceName     string `xml:"rootDeviceName"`
	VirtualizationType string `xml:"virtualizationType"`
	Hypervisor         string `xml:"hypervisor"`
	EnaSupport         bool   `xml:"enaSupport"`
}

func (im *image) x() xImage {
	owner, alias, details := "099720109477", "", "Linux/UNIX"
	if im.platform == "windows" {
		owner, alias, details = "801119661308", "amazon", "Windows"
	}
	return xImage{ImageID: im.id, ImageLocation: alias + "/" + im.name, ImageState: "available", ImageOwnerID: owner,
		CreationDate: "2026-09-10T00:00:00.000Z", IsPublic: true, Architecture: "x86_64", ImageType: "machine", Platform: im.platform,
		PlatformDetails: details, ImageOwnerAlias: alias, Name: im.name, Description: im.description, RootDeviceType: "ebs",
		RootDeviceName: "/dev/sda1", VirtualizationType: "hvm", Hypervisor: "xen", EnaSupport: true}
}

func (s *Server) describeImages(p url.Values) (any, *Error, func()) {
	ids, e := s.selectIDs(p, "ImageId", "InvalidAMIID.NotFound", "image id", sortedKeys(s.st.images), func(id string) (map[string]string, func(string) ([]string, bool)) {
		im := s.st.images[id]
		return nil, func(name string) ([]string, bool) {
			switch name {
			case "image-id":
				return []string{im.id}, true
			case "name":
				return []string{im.name}, true
			case "platform":
				return []string{im.platform}, true
			case "state":
				return []string{"available"}, true
			case "architecture":
				return []string{"x86_64"}, true
			}
			return nil, false
		}
	})
	if e != nil {
		return nil, e, nil
	}
	ids, next, e := page(p, ids, 5, 1000)
	if e != nil {
		return nil, e, nil
	}
	out := struct {
		ImagesSet []xImage `xml:"imagesSet>item"`
		NextToken string   `xml:"nextToken,omitempty"`
	}{NextToken: next}
	for _, id := range ids {
		out.ImagesSet = append(out.ImagesSet, s.st.images[id].x())
	}
	return out, nil, nil
}

type xProcessorInfo struct {
	SupportedArchitectures   []string `xml:"supportedArchitectures>item"`
	SustainedClockSpeedInGhz float64  `xml:"sustainedClockSpeedInGhz"`
	SupportedFeatures        []string `xml:"supportedFeatures>item"`
	Manufacturer             string   `xml:"manufacturer"`
}

type xVCPUInfo struct {
	DefaultVCpus          int `xml:"defaultVCpus"`
	DefaultCores          int `xml:"defaultCores"`
	DefaultThreadsPerCore int `xml:"defaultThreadsPerCore"`
}

type xInstanceType struct {
	InstanceType                 string         `xml:"instanceType"`
	CurrentGeneration            bool           `xml:"currentGeneration"`
	SupportedUsageClasses        []string       `xml:"supportedUsageClasses>item"`
	SupportedRootDeviceTypes     []string       `xml:"supportedRootDeviceTypes>item"`
	SupportedVirtualizationTypes []string       `xml:"supportedVirtualizationTypes>item"`
	BareMetal                    bool           `xml:"bareMetal"`
	Hypervisor                   string         `xml:"hypervisor,omitempty"`
	ProcessorInfo                xProcessorInfo `xml:"processorInfo"`
	VCPUInfo                     xVCPUInfo      `xml:"vCpuInfo"`
	MemoryInfo                   struct {
		SizeInMiB int `xml:"sizeInMiB"`
	} `xml:"memoryInfo"`
}

func xType(name string) xInstanceType {
	t := instanceTypes[name]
	metal, virtual := nestedCapable(name)
	out := xInstanceType{InstanceType: name, CurrentGeneration: true, SupportedUsageClasses: []string{"on-demand", "spot"},
		SupportedRootDeviceTypes: []string{"ebs"}, SupportedVirtualizationTypes: []string{"hvm"}, BareMetal: metal,
		ProcessorInfo: xProcessorInfo{SupportedArchitectures: []string{"x86_64"}, SustainedClockSpeedInGhz: 3.5, Manufacturer: "Intel"},
		VCPUInfo:      xVCPUInfo{DefaultVCpus: t.vcpus, DefaultCores: max(t.vcpus/2, 1), DefaultThreadsPerCore: 2}}
	out.MemoryInfo.SizeInMiB = t.mib
	if !metal {
		out.Hypervisor = "nitro"
	}
	// The API reports nested virtualisation as a processor feature of the
	// virtual types that take CpuOptions.NestedVirtualization; metal runs any hypervisor.
	if virtual && t.vcpus <= 192 {
		out.ProcessorInfo.SupportedFeatures = []string{"nested-virtualization"}
	}
	return out
}

func (s *Server) describeInstanceTypes(p url.Values) (any, *Error, func()) {
	all := sortedKeys(instanceTypes)
	if want := list(p, "InstanceType"); len(want) > 0 {
		for _, w := range want {
			if _, ok := instanceTypes[w]; !ok {
				return nil, invalidParam("The following supplied instance types do not exist: [%s]", w), nil
			}
		}
		all = slices.DeleteFunc(all, func(t string) bool { return !slices.Contains(want, t) })
	}
	var ids []string
	fs := filters(p)
	for _, name := range all {
		x := xType(name)
		ok, e := matches(fs, nil, func(f string) ([]string, bool) {
			switch f {
			case "instance-type":
				return []string{name}, true
			case "bare-metal":
				return []string{strconv.FormatBool(x.BareMetal)}, true
			case "processor-info.supported-features":
				return x.ProcessorInfo.SupportedFeatures, true
			case "current-generation":
				return []string{"true"}, true
			}
			return nil, false
		})
		if e != nil {
			return nil, e, nil
		}
		if ok {
			ids = append(ids, name)
		}
	}
	ids, next, e := page(p, ids, 5, 100)
	if e != nil {
		return nil, e, nil
	}
	out := struct {
		Set       []xInstanceType `xml:"instanceTypeSet>item"`
		NextToken string          `xml:"nextToken,omitempty"`
	}{NextToken: next}
	for _, id := range ids {
		out.Set = append(out.Set, xType(id))
	}
	return out, nil, nil
}
