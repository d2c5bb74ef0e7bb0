package azure

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Names of a node's objects; the VM is the node's name.
func nicName(node string) string  { return node + "-nic" }
func diskName(node string) string { return node + "-osdisk" }

// extensionName is the Windows nodes' Custom Script Extension.
const extensionName = "mixedk8s-winrm"

// maxCustomData is customData's limit after base64 (armcompute OSProfile.CustomData: "maximum length ... is 65535 bytes").
const maxCustomData = 65535

// maxWindowsComputerName is the NetBIOS limit (armcompute OSProfile.ComputerName: "Windows VMs: 15 characters").
const maxWindowsComputerName = 15

// computerName is the VM's osProfile.computerName: the request's computer
// name on Windows, which Azure sets at provisioning, so the VM resource name
// (up to 64 characters) can stay the node name
// (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules, Microsoft.Compute).
func computerName(req clouds.InstanceRequest) string {
	if req.OS == "windows" && req.ComputerName != "" {
		return req.ComputerName
	}
	return req.Name
}

// imageTable is the one table of default images: Ubuntu 24.04 LTS and
// Windows Server Core (Gen2, small disk) per version. Which Windows
// versions a Kubernetes version supports is the validator's matrix.
// Sources: Canonical's Azure image names
// (https://documentation.ubuntu.com/azure/azure-how-to/instances/find-ubuntu-images/);
// Windows 2019/2022 gh:Azure/azure-quickstart-templates
// quickstarts/microsoft.compute/vm-trustedlaunch-windows/main.bicep; 2025
// gh:Azure/AgentBaker vhdbuilder/packer/windows/windows_settings.json.
var imageTable = map[string]armcompute.ImageReference{
	"linux":        {Publisher: to("Canonical"), Offer: to("ubuntu-24_04-lts"), SKU: to("server"), Version: to("latest")},
	"windows-2019": {Publisher: to("MicrosoftWindowsServer"), Offer: to("WindowsServer"), SKU: to("2019-datacenter-core-smalldisk-g2"), Version: to("latest")},
	"windows-2022": {Publisher: to("MicrosoftWindowsServer"), Offer: to("WindowsServer"), SKU: to("2022-datacenter-core-smalldisk-g2"), Version: to("latest")},
	"windows-2025": {Publisher: to("MicrosoftWindowsServer"), Offer: to("WindowsServer"), SKU: to("2025-datacenter-core-smalldisk-g2"), Version: to("latest")},
}

// imageFor returns req.Image (a publisher:offer:sku:version URN or an
// image resource ID) or the table's default.
func imageFor(req clouds.InstanceRequest) (armcompute.ImageReference, error) {
	if req.Image != "" {
		if strings.HasPrefix(req.Image, "/subscriptions/") {
			return armcompute.ImageReference{ID: to(req.Image)}, nil
		}
		p := strings.Split(req.Image, ":")
		if len(p) != 4 || slices.Contains(p, "") {
			return armcompute.ImageReference{}, fmt.Errorf("image %q is neither publisher:offer:sku:version nor an image resource ID", req.Image)
		}
		return armcompute.ImageReference{Publisher: to(p[0]), Offer: to(p[1]), SKU: to(p[2]), Version: to(p[3])}, nil
	}
	key := req.OS
	if req.OS == "windows" {
		key += "-" + req.WindowsVersion
	}
	img, ok := imageTable[key]
	if !ok {
		return armcompute.ImageReference{}, fmt.Errorf("os %q version %q has no default image; use linux, or windows with 2019, 2022 or 2025", req.OS, req.WindowsVersion)
	}
	return img, nil
}

// imageName is the profile's view of the image table: the URN a node boots.
func imageName(os, windowsVersion string) (string, error) {
	img, err := imageFor(clouds.InstanceRequest{OS: os, WindowsVersion: windowsVersion})
	if err != nil {
		return "", err
	}
	return imageURN(&img), nil
}

// requestedURN is the image as a spec names it: the version asked for
// ("latest"), not the exactVersion Azure resolved it to, so a node made
// from "latest" still matches its spec when a newer image comes out.
func requestedURN(r *armcompute.ImageReference) string {
	if r == nil || r.ID != nil || r.Version == nil {
		return imageURN(r)
	}
	return strings.Join([]string{val(r.Publisher), val(r.Offer), val(r.SKU), val(r.Version)}, ":")
}

// windowsVersionOf reads the Windows Server release from a VM's image
// reference when it is one of the image table's; "" for any other image.
func windowsVersionOf(r *armcompute.ImageReference) string {
	if r == nil || r.ID != nil {
		return ""
	}
	for key, img := range imageTable {
		v, ok := strings.CutPrefix(key, "windows-")
		if ok && strings.EqualFold(val(r.Publisher), val(img.Publisher)) && strings.EqualFold(val(r.Offer), val(img.Offer)) && strings.EqualFold(val(r.SKU), val(img.SKU)) {
			return v
		}
	}
	return ""
}

func imageURN(r *armcompute.ImageReference) string {
	if r == nil {
		return ""
	}
	if r.ID != nil {
		return *r.ID
	}
	v := val(r.Version)
	if r.ExactVersion != nil {
		v = *r.ExactVersion
	}
	return strings.Join([]string{val(r.Publisher), val(r.Offer), val(r.SKU), v}, ":")
}

// EnsureInstance implements clouds.Cloud: it adopts the VM named
// req.Name, or creates its NIC and VM (and on Windows the extension that
// installs WinRM), then waits until Azure reports it provisioned.
func (c *Cloud) EnsureInstance(ctx context.Context, req clouds.InstanceRequest) (clouds.Instance, error) {
	object := fmt.Sprintf("VM %q", req.Name)
	invalid := func(err error, fix string) error {
		return &clouds.Error{Kind: clouds.KindInvalid, Op: "VirtualMachines.CreateOrUpdate", Object: object, Err: err, Fix: fix}
	}
	if cn := computerName(req); req.OS == "windows" && len(cn) > maxWindowsComputerName {
		return clouds.Instance{}, invalid(fmt.Errorf("the Windows computer name %q is %d characters, more than %d", cn, len(cn), maxWindowsComputerName),
			"pass a computer name of at most 15 characters in the request (cluster.ComputerName derives one from the node name)")
	}
	if req.NestedVirtualization && !Profile.Nested(req.InstanceType) {
		return clouds.Instance{}, invalid(fmt.Errorf("size %q does not run Hyper-V isolation in a Trusted Launch VM", req.InstanceType),
			fmt.Sprintf("choose a v5 or later D or E size (e.g. Standard_D4s_v5) for pool %q", req.Pool))
	}
	for {
		got, err := c.vms.Get(ctx, c.cfg.ResourceGroup, req.Name, nil)
		if err != nil && !isNotFound(err) {
			return clouds.Instance{}, call{op: "VirtualMachines.Get", object: object}.classify(err)
		}
		if err != nil {
			break
		}
		vm := got.VirtualMachine
		if !hasClusterTag(vm.Tags, req.Cluster) {
			return clouds.Instance{}, &clouds.Error{Kind: clouds.KindInvalid, Op: "VirtualMachines.Get", Object: object,
				Err: fmt.Errorf("a VM of that name exists in resource group %q and is not cluster %q's", c.cfg.ResourceGroup, req.Cluster),
				Fix: "rename the cluster or move the other VM"}
		}
		switch provisioningState(vm) {
		case "Succeeded":
			return c.finish(ctx, req, vm)
		case "Failed":
			// A VM whose allocation failed stays in Failed; replace it.
			if err := c.deleteVM(ctx, req.Name); err != nil {
				return clouds.Instance{}, err
			}
			continue
		}
		// Creating, Updating or Deleting (a lost reply, another process): wait.
		if err := sleep(ctx, c.pollEvery()); err != nil {
			return clouds.Instance{}, fmt.Errorf("failed to wait for %s to be provisioned: %w", object, err)
		}
	}
	return c.create(ctx, req)
}

func (c *Cloud) pollEvery() time.Duration {
	if c.cfg.PollFrequency > 0 {
		return c.cfg.PollFrequency
	}
	return 10 * time.Second
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func provisioningState(vm armcompute.VirtualMachine) string {
	if vm.Properties == nil {
		return ""
	}
	return val(vm.Properties.ProvisioningState)
}

func (c *Cloud) create(ctx context.Context, req clouds.InstanceRequest) (clouds.Instance, error) {
	object := fmt.Sprintf("VM %q", req.Name)
	invalid := func(err error, fix string) error {
		return &clouds.Error{Kind: clouds.KindInvalid, Op: "VirtualMachines.CreateOrUpdate", Object: object, Err: err, Fix: fix}
	}
	img, err := imageFor(req)
	if err != nil {
		return clouds.Instance{}, invalid(err, "set the pool's os and windows_version, or image")
	}
	b, err := renderBoot(req)
	if err != nil {
		return clouds.Instance{}, invalid(fmt.Errorf("failed to write the first-boot data: %w", err), "check the node identity the provisioner generated")
	}
	customData := base64.StdEncoding.EncodeToString([]byte(b.customData))
	if len(customData) > maxCustomData {
		return clouds.Instance{}, invalid(fmt.Errorf("customData is %d bytes in base64, more than Azure's %d", len(customData), maxCustomData), "shorten the node's first-boot data")
	}
	nsg := req.Network.Firewalls.For(req.Role)
	if req.Network.SubnetID == "" {
		return clouds.Instance{}, invalid(fmt.Errorf("cluster %q has no subnet", req.Cluster), "create the network first (EnsureNetwork)")
	}
	nic, err := c.ensureNIC(ctx, req, nsg)
	if err != nil {
		return clouds.Instance{}, err
	}
	os := &armcompute.OSProfile{ComputerName: to(computerName(req)), AdminUsername: to(req.Identity.AdminUser), CustomData: to(customData)}
	osType := armcompute.OperatingSystemTypesLinux
	if req.OS == "windows" {
		osType = armcompute.OperatingSystemTypesWindows
		os.AdminPassword = to(b.adminPassword)
		os.WindowsConfiguration = &armcompute.WindowsConfiguration{ProvisionVMAgent: to(true), EnableAutomaticUpdates: to(false)}
	} else {
		keys := make([]*armcompute.SSHPublicKey, len(b.sshKeys))
		for i, k := range b.sshKeys {
			keys[i] = &armcompute.SSHPublicKey{Path: to("/home/" + req.Identity.AdminUser + "/.ssh/authorized_keys"), KeyData: to(strings.TrimSpace(k))}
		}
		os.LinuxConfiguration = &armcompute.LinuxConfiguration{DisablePasswordAuthentication: to(true), SSH: &armcompute.SSHConfiguration{PublicKeys: keys}}
	}
	disk := &armcompute.OSDisk{
		Name: to(diskName(req.Name)), CreateOption: to(armcompute.DiskCreateOptionTypesFromImage), OSType: to(osType),
		// The disk goes with the VM; the default, Detach, would leave it behind.
		DeleteOption: to(armcompute.DiskDeleteOptionTypesDelete),
		ManagedDisk:  &armcompute.ManagedDiskParameters{StorageAccountType: to(armcompute.StorageAccountTypesStandardSSDLRS)},
	}
	if req.DiskGB > 0 {
		disk.DiskSizeGB = to(int32(req.DiskGB))
	}
	if c.cfg.DiskEncryptionSetID != "" {
		// Server-side encryption with the customer's key in the set's Key Vault
		// (https://learn.microsoft.com/azure/virtual-machines/disk-encryption#customer-managed-keys).
		disk.ManagedDisk.DiskEncryptionSet = &armcompute.DiskEncryptionSetParameters{ID: to(c.cfg.DiskEncryptionSetID)}
	}
	vm := armcompute.VirtualMachine{
		Location: to(c.cfg.Location),
		Tags:     c.tags(req.Cluster, TagNode, req.Name, TagPool, req.Pool, TagRole, req.Role),
		Properties: &armcompute.VirtualMachineProperties{
			HardwareProfile: &armcompute.HardwareProfile{VMSize: to(armcompute.VirtualMachineSizeTypes(req.InstanceType))},
			StorageProfile:  &armcompute.StorageProfile{ImageReference: &img, OSDisk: disk},
			OSProfile:       os,
			NetworkProfile: &armcompute.NetworkProfile{NetworkInterfaces: []*armcompute.NetworkInterfaceReference{{
				ID: nic.ID, Properties: &armcompute.NetworkInterfaceReferenceProperties{Primary: to(true), DeleteOption: to(armcompute.DeleteOptionsDelete)},
			}}},
			// Set explicitly: Gen2 images default to Trusted Launch, and nested
			// virtualisation depends on it (see nestedVirtualization in profile.go).
			SecurityProfile: &armcompute.SecurityProfile{
				SecurityType: to(armcompute.SecurityTypesTrustedLaunch),
				UefiSettings: &armcompute.UefiSettings{SecureBootEnabled: to(true), VTpmEnabled: to(true)},
			},
		},
	}
	k := call{op: "VirtualMachines.CreateOrUpdate", object: object, pool: req.Pool}
	poller, err := c.vms.BeginCreateOrUpdate(ctx, c.cfg.ResourceGroup, req.Name, vm, nil)
	if err != nil {
		ce := k.classify(err)
		if e, ok := ce.(*clouds.Error); ok && c.cfg.DiskEncryptionSetID != "" && strings.Contains(err.Error(), "iskEncryptionSet") {
			e.Kind = clouds.KindInvalid
			e.Fix = fmt.Sprintf("set azure.disk_encryption_set_id to the ID of a disk encryption set in subscription %s and location %s (az disk-encryption-set show --query id)", c.cfg.SubscriptionID, c.cfg.Location)
		}
		return clouds.Instance{}, ce
	}
	res, err := poller.PollUntilDone(ctx, c.pollOptions())
	if err != nil {
		return clouds.Instance{}, k.classify(err)
	}
	return c.finishWith(ctx, req, res.VirtualMachine, nic, b)
}

// finish completes an adopted VM: its Windows extension, then its address.
func (c *Cloud) finish(ctx context.Context, req clouds.InstanceRequest, vm armcompute.VirtualMachine) (clouds.Instance, error) {
	nic, err := c.nics.Get(ctx, c.cfg.ResourceGroup, nicName(req.Name), nil)
	if err != nil {
		return clouds.Instance{}, call{op: "NetworkInterfaces.Get", object: fmt.Sprintf("NIC %q", nicName(req.Name))}.classify(err)
	}
	return c.finishWith(ctx, req, vm, nic.Interface, boot{})
}

func (c *Cloud) finishWith(ctx context.Context, req clouds.InstanceRequest, vm armcompute.VirtualMachine, nic armnetwork.Interface, b boot) (clouds.Instance, error) {
	if req.OS == "windows" && (req.Identity.WinRMCertPEM != "" || b.command != "") {
		if err := c.ensureExtension(ctx, req, b); err != nil {
			return clouds.Instance{}, err
		}
	}
	return toInstance(vm, privateIP(nic)), nil
}

// ensureExtension runs the WinRM setup once: an extension that exists and
// succeeded is left alone, so a rerun neither mutates nor re-sends secrets.
func (c *Cloud) ensureExtension(ctx context.Context, req clouds.InstanceRequest, b boot) error {
	object := fmt.Sprintf("extension %q of VM %q", extensionName, req.Name)
	got, err := c.exts.Get(ctx, c.cfg.ResourceGroup, req.Name, extensionName, nil)
	if err == nil && got.Properties != nil && val(got.Properties.ProvisioningState) == "Succeeded" {
		return nil
	}
	if err != nil && !isNotFound(err) {
		return call{op: "VirtualMachineExtensions.Get", object: object}.classify(err)
	}
	if b.command == "" {
		if b, err = renderBoot(req); err != nil {
			return &clouds.Error{Kind: clouds.KindInvalid, Op: "VirtualMachineExtensions.CreateOrUpdate", Object: object, Err: err}
		}
	}
	ext := armcompute.VirtualMachineExtension{
		Location: to(c.cfg.Location),
		Tags:     c.tags(req.Cluster, TagNode, req.Name),
		Properties: &armcompute.VirtualMachineExtensionProperties{
			Publisher: to("Microsoft.Compute"), Type: to("CustomScriptExtension"), TypeHandlerVersion: to("1.10"),
			AutoUpgradeMinorVersion: to(true),
			ProtectedSettings:       map[string]any{"commandToExecute": b.command},
		},
	}
	k := call{op: "VirtualMachineExtensions.CreateOrUpdate", object: object, pool: req.Pool}
	poller, err := c.exts.BeginCreateOrUpdate(ctx, c.cfg.ResourceGroup, req.Name, extensionName, ext, nil)
	if err != nil {
		return k.classify(err)
	}
	_, err = poller.PollUntilDone(ctx, c.pollOptions())
	return k.classify(err)
}

func (c *Cloud) ensureNIC(ctx context.Context, req clouds.InstanceRequest, nsg string) (armnetwork.Interface, error) {
	name := nicName(req.Name)
	object := fmt.Sprintf("NIC %q", name)
	// A control-plane NIC is a member of the application security group etcd's rule admits.
	asg := ""
	if req.Role == clouds.RoleControlPlane {
		asg = c.asgID(req.Cluster)
	}
	got, err := c.nics.Get(ctx, c.cfg.ResourceGroup, name, nil)
	if err == nil && nicMatches(got.Interface, req.Network.SubnetID, nsg) && (asg == "" || inASG(got.Interface, asg)) {
		return got.Interface, nil
	}
	if err != nil && !isNotFound(err) {
		return armnetwork.Interface{}, call{op: "NetworkInterfaces.Get", object: object}.classify(err)
	}
	nic := armnetwork.Interface{
		Location: to(c.cfg.Location),
		Tags:     c.tags(req.Cluster, TagNode, req.Name),
		Properties: &armnetwork.InterfacePropertiesFormat{
			IPConfigurations: []*armnetwork.InterfaceIPConfiguration{{Name: to("ipconfig1"), Properties: &armnetwork.InterfaceIPConfigurationPropertiesFormat{
				Subnet: &armnetwork.Subnet{ID: to(req.Network.SubnetID)}, Primary: to(true),
				PrivateIPAllocationMethod: to(armnetwork.IPAllocationMethodDynamic),
			}}},
		},
	}
	if asg != "" {
		nic.Properties.IPConfigurations[0].Properties.ApplicationSecurityGroups = []*armnetwork.ApplicationSecurityGroup{{ID: to(asg)}}
	}
	if err == nil && got.Properties != nil && len(got.Properties.IPConfigurations) > 0 && got.Properties.IPConfigurations[0].Properties != nil {
		// A rewrite keeps the load balancer pools the NIC is in (SetLoadBalancerTargets owns them).
		nic.Properties.IPConfigurations[0].Properties.LoadBalancerBackendAddressPools = got.Properties.IPConfigurations[0].Properties.LoadBalancerBackendAddressPools
	}
	if nsg != "" {
		nic.Properties.NetworkSecurityGroup = &armnetwork.SecurityGroup{ID: to(nsg)}
	}
	k := call{op: "NetworkInterfaces.CreateOrUpdate", object: object}
	poller, err := c.nics.BeginCreateOrUpdate(ctx, c.cfg.ResourceGroup, name, nic, nil)
	if err != nil {
		return armnetwork.Interface{}, k.classify(err)
	}
	res, err := poller.PollUntilDone(ctx, c.pollOptions())
	if err != nil {
		return armnetwork.Interface{}, k.classify(err)
	}
	return res.Interface, nil
}

func nicMatches(n armnetwork.Interface, subnet, nsg string) bool {
	p := n.Properties
	if p == nil || len(p.IPConfigurations) == 0 || p.IPConfigurations[0].Properties == nil || p.IPConfigurations[0].Properties.Subnet == nil {
		return false
	}
	have := ""
	if p.NetworkSecurityGroup != nil {
		have = val(p.NetworkSecurityGroup.ID)
	}
	return strings.EqualFold(val(p.IPConfigurations[0].Properties.Subnet.ID), subnet) && strings.EqualFold(have, nsg)
}

func privateIP(n armnetwork.Interface) string {
	if n.Properties == nil {
		return ""
	}
	for _, ip := range n.Properties.IPConfigurations {
		if ip.Properties != nil && ip.Properties.PrivateIPAddress != nil {
			return *ip.Properties.PrivateIPAddress
		}
	}
	return ""
}

func toInstance(vm armcompute.VirtualMachine, ip string) clouds.Instance {
	t := fromTags(vm.Tags)
	in := clouds.Instance{ID: val(vm.ID), Cluster: t[TagCluster], Name: t[TagNode], Pool: t[TagPool], Role: t[TagRole], OS: "linux",
		PrivateIP: ip, Tags: t, State: clouds.StatePending}
	if in.Name == "" {
		in.Name = val(vm.Name)
	}
	if vm.Properties != nil {
		in.Incarnation = val(vm.Properties.VMID) // unique per VM (armcompute VirtualMachineProperties.VMID)
	}
	p := vm.Properties
	if p == nil {
		return in
	}
	if p.HardwareProfile != nil {
		in.InstanceType = string(val(p.HardwareProfile.VMSize))
	}
	if s := p.StorageProfile; s != nil {
		in.Image = requestedURN(s.ImageReference)
		if s.OSDisk != nil && val(s.OSDisk.OSType) == armcompute.OperatingSystemTypesWindows {
			in.OS = "windows"
			in.WindowsVersion = windowsVersionOf(s.ImageReference)
		}
		if s.OSDisk != nil {
			in.DiskGB = int(val(s.OSDisk.DiskSizeGB))
		}
	}
	// The list call carries no instance view, so the power state is not
	// known here; provisioningState says whether Azure finished the VM
	// (https://learn.microsoft.com/azure/virtual-machines/states-billing).
	switch val(p.ProvisioningState) {
	case "Succeeded", "Updating":
		in.State = clouds.StateRunning
	case "Deleting":
		in.State = clouds.StateDeleting
	}
	return in
}

// Instances implements clouds.Cloud: one paged list of the group's VMs and
// one of its NICs (for the addresses), so its cost grows with pages, not nodes.
func (c *Cloud) Instances(ctx context.Context, cluster string) ([]clouds.Instance, error) {
	object := fmt.Sprintf("VMs of cluster %q", cluster)
	ips := map[string]string{}
	nics := c.nics.NewListPager(c.cfg.ResourceGroup, nil)
	for nics.More() {
		page, err := nics.NextPage(ctx)
		if isNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, call{op: "NetworkInterfaces.List", object: object}.classify(err)
		}
		for _, n := range page.Value {
			if hasClusterTag(n.Tags, cluster) {
				ips[strings.ToLower(val(n.ID))] = privateIP(*n)
			}
		}
	}
	var out []clouds.Instance
	vms := c.vms.NewListPager(c.cfg.ResourceGroup, nil)
	for vms.More() {
		page, err := vms.NextPage(ctx)
		if isNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, call{op: "VirtualMachines.List", object: object}.classify(err)
		}
		for _, vm := range page.Value {
			if !hasClusterTag(vm.Tags, cluster) {
				continue
			}
			ip := ""
			if p := vm.Properties; p != nil && p.NetworkProfile != nil && len(p.NetworkProfile.NetworkInterfaces) > 0 {
				ip = ips[strings.ToLower(val(p.NetworkProfile.NetworkInterfaces[0].ID))]
			}
			out = append(out, toInstance(*vm, ip))
		}
	}
	return out, nil
}

// DeleteInstance implements clouds.Cloud: the VM (its NIC and OS disk go
// with it, deleteOption Delete), then a NIC or disk left by a create that
// never made its VM. It waits, so DeleteNetwork finds nothing in use.
func (c *Cloud) DeleteInstance(ctx context.Context, inst clouds.Instance) error {
	name := inst.Name
	if name == "" {
		i := strings.LastIndex(inst.ID, "/")
		name = inst.ID[i+1:]
	}
	if name == "" {
		return errors.New("azure: DeleteInstance needs the instance's name or ID")
	}
	if err := c.deleteVM(ctx, name); err != nil {
		return err
	}
	k := call{op: "NetworkInterfaces.Delete", object: fmt.Sprintf("NIC %q", nicName(name))}
	nicPoller, err := c.nics.BeginDelete(ctx, c.cfg.ResourceGroup, nicName(name), nil)
	if err == nil {
		_, err = nicPoller.PollUntilDone(ctx, c.pollOptions())
	}
	if err != nil && !isNotFound(err) {
		return k.classify(err)
	}
	k = call{op: "Disks.Delete", object: fmt.Sprintf("disk %q", diskName(name))}
	diskPoller, err := c.disks.BeginDelete(ctx, c.cfg.ResourceGroup, diskName(name), nil)
	if err == nil {
		_, err = diskPoller.PollUntilDone(ctx, c.pollOptions())
	}
	if err != nil && !isNotFound(err) {
		return k.classify(err)
	}
	return nil
}

func (c *Cloud) deleteVM(ctx context.Context, name string) error {
	k := call{op: "VirtualMachines.Delete", object: fmt.Sprintf("VM %q", name)}
	poller, err := c.vms.BeginDelete(ctx, c.cfg.ResourceGroup, name, nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, c.pollOptions())
	}
	if err != nil && !isNotFound(err) {
		return k.classify(err)
	}
	return nil
}
