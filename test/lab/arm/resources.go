package arm

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources/v4"
)

type group struct {
	name     string
	location string
	tags     map[string]*string
	deleting bool
}

// resource is one stored ARM resource: its SDK model, plus what ARM keeps
// but never returns (the VM's first-boot data, the extension's protected settings).
type resource struct {
	id, group, name string
	kind            *kind
	vm              *armcompute.VirtualMachine
	ext             *armcompute.VirtualMachineExtension
	disk            *armcompute.Disk
	vnet            *armnetwork.VirtualNetwork
	nsg             *armnetwork.SecurityGroup
	nic             *armnetwork.Interface
	lb              *armnetwork.LoadBalancer
	pip             *armnetwork.PublicIPAddress
	asg             *armnetwork.ApplicationSecurityGroup
	boot            Boot
	busy            bool // a long-running operation is changing it
}

// Boot is what a VM got for its first boot, as ARM keeps it.
type Boot struct {
	AdminUsername    string
	AdminPassword    string
	SSHPublicKeys    []string
	CustomData       string // decoded
	ProtectedCommand string // the Custom Script Extension's protectedSettings.commandToExecute
}

// VM is a VM as the inspection API and the hooks report it.
type VM struct {
	ID, Name, Group, Size, OS, ComputerName, PrivateIP, State string
	// VMID is unique to this VM, unlike ID, which a VM made again under the
	// same name reuses (armcompute VirtualMachineProperties.VMID).
	VMID string
	// Image is the VM's image as publisher:offer:sku.
	Image string
	// DiskEncryptionSetID is the disk encryption set whose key encrypts
	// the OS disk, empty for platform-managed keys.
	DiskEncryptionSetID string
	Tags                map[string]string
	Boot                Boot
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (s *Server) lookup(group string, k *kind, name, child string) *resource {
	return s.resources[strings.ToLower(s.resourceID(group, k, name, child))]
}

func (s *Server) groupOf(name string) *group { return s.groups[strings.ToLower(name)] }

// groupError is ARM's reply for a resource in a missing group
// (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-not-found).
func (s *Server) groupError(name string) *Error {
	g := s.groupOf(name)
	if g == nil {
		return errf(http.StatusNotFound, "ResourceGroupNotFound", "Resource group '%s' could not be found.", name)
	}
	if g.deleting {
		return errf(http.StatusConflict, "ResourceGroupBeingDeleted", "The resource group '%s' is in deprovisioning state and cannot perform this operation.", name)
	}
	return nil
}

func notFound(k *kind, group, name string) *Error {
	return errf(http.StatusNotFound, "ResourceNotFound", "The Resource '%s/%s' under resource group '%s' was not found.", k.namespace+"/"+k.typ, name, group)
}

// tagNameRE: tag names cannot contain <, >, %, &, \, ? or /; at most 50
// tags, names up to 512 characters, values up to 256
// (https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations).
var badTagRE = regexp.MustCompile(`[<>%&\\?/]`)

func checkTags(t map[string]*string) *Error {
	if len(t) > 50 {
		return errf(http.StatusBadRequest, "InvalidTag", "The number of tags %d exceeds the maximum of 50.", len(t))
	}
	for k, v := range t {
		if badTagRE.MatchString(k) {
			return errf(http.StatusBadRequest, "InvalidTagNameCharacters", "The tag names '%s' have reserved characters '<,>,%%,&,\\,?,/' or control characters.", k)
		}
		if len(k) > 512 || len(deref(v)) > 256 {
			return errf(http.StatusBadRequest, "InvalidTag", "The tag '%s' is longer than allowed.", k)
		}
	}
	return nil
}

func (s *Server) checkLocation(loc *string) *Error {
	if loc == nil || !strings.EqualFold(strings.ReplaceAll(*loc, " ", ""), s.opts.Location) {
		return errf(http.StatusBadRequest, "LocationRequired", "The location property is required for this definition and must be '%s' in this subscription.", s.opts.Location)
	}
	return nil
}

// checkTracked checks what every tracked resource's PUT carries: its
// location and its tags.
func (s *Server) checkTracked(loc *string, tags map[string]*string) *Error {
	if e := s.checkLocation(loc); e != nil {
		return e
	}
	return checkTags(tags)
}

func decode(body []byte, v any) *Error {
	if err := json.Unmarshal(body, v); err != nil {
		return errf(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: '%v'.", err)
	}
	return nil
}

// --- resource groups (synchronous PUT/GET, DELETE answered 202 with a Location poll) ---

func (s *Server) putGroup(rt route, body []byte) (int, any, http.Header, *Error) {
	var in armresources.ResourceGroup
	if e := decode(body, &in); e != nil {
		return 0, nil, nil, e
	}
	// Group names: 1-90 of letters, digits, '_', '-', '.', '(' and ')', not ending in '.'
	// (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftresources).
	if !groupNameRE.MatchString(rt.group) || strings.HasSuffix(rt.group, ".") {
		return 0, nil, nil, errf(http.StatusBadRequest, "InvalidResourceGroup", "The provided resource group name '%s' has these invalid characters.", rt.group)
	}
	if e := s.checkTracked(in.Location, in.Tags); e != nil {
		return 0, nil, nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	status := http.StatusOK
	g := s.groupOf(rt.group)
	switch {
	case g == nil:
		g = &group{name: rt.group, location: s.opts.Location}
		s.groups[strings.ToLower(rt.group)] = g
		status = http.StatusCreated
	case g.deleting:
		return 0, nil, nil, s.groupError(rt.group)
	}
	g.tags = in.Tags
	return status, s.groupModel(g), nil, nil
}

var groupNameRE = regexp.MustCompile(`^[-\w._()]{1,90}$`)

func (s *Server) groupModel(g *group) *armresources.ResourceGroup {
	state := "Succeeded"
	if g.deleting {
		state = "Deleting"
	}
	return &armresources.ResourceGroup{ID: ptr("/subscriptions/" + s.opts.SubscriptionID + "/resourceGroups/" + g.name), Name: ptr(g.name),
		Type: ptr("Microsoft.Resources/resourceGroups"), Location: ptr(g.location), Tags: g.tags,
		Properties: &armresources.ResourceGroupProperties{ProvisioningState: ptr(state)}}
}

func (s *Server) getGroup(rt route) (int, any, http.Header, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupOf(rt.group)
	if g == nil {
		return 0, nil, nil, s.groupError(rt.group)
	}
	return http.StatusOK, s.groupModel(g), nil, nil
}

// deleteGroup deletes the group and everything in it
// (https://learn.microsoft.com/azure/azure-resource-manager/management/delete-resource-group).
func (s *Server) deleteGroup(rt route) (int, any, http.Header, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupOf(rt.group)
	if g == nil {
		return 0, nil, nil, s.groupError(rt.group)
	}
	if g.deleting {
		return 0, nil, nil, s.groupError(rt.group)
	}
	g.deleting = true
	h := s.startOperation("Microsoft.Resources", true, func() (*Error, []func()) {
		var hooks []func()
		for _, id := range sortedKeys(s.resources) {
			if r := s.resources[id]; strings.EqualFold(r.group, g.name) {
				hooks = append(hooks, s.remove(r)...)
			}
		}
		delete(s.groups, strings.ToLower(g.name))
		return nil, hooks
	})
	h.Del("Azure-AsyncOperation") // the Resources RP answers with Location only
	return http.StatusAccepted, nil, h, nil
}

// --- generic resource verbs ---

func (s *Server) get(rt route) (int, any, http.Header, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.groupError(rt.group); e != nil && s.groupOf(rt.group) == nil {
		return 0, nil, nil, e
	}
	r := s.lookup(rt.group, rt.kind, rt.name, rt.childName)
	if r == nil {
		name := rt.name
		if rt.kind.child != "" {
			name += "/" + rt.childName
		}
		return 0, nil, nil, notFound(rt.kind, rt.group, name)
	}
	return http.StatusOK, s.view(r), nil, nil
}

// view is what GET returns: ARM never returns adminPassword, customData or
// protectedSettings (mod: armcompute/v8 models.go, OSProfile.AdminPassword
// and CustomData; https://learn.microsoft.com/azure/virtual-machines/extensions/custom-script-windows).
func (s *Server) view(r *resource) any {
	switch {
	case r.vm != nil:
		v := clone(r.vm)
		if v.Properties != nil && v.Properties.OSProfile != nil {
			v.Properties.OSProfile.AdminPassword, v.Properties.OSProfile.CustomData = nil, nil
		}
		return v
	case r.ext != nil:
		v := clone(r.ext)
		if v.Properties != nil {
			v.Properties.ProtectedSettings = nil
		}
		return v
	case r.disk != nil:
		return clone(r.disk)
	case r.vnet != nil:
		return clone(r.vnet)
	case r.nsg != nil:
		return clone(r.nsg)
	case r.nic != nil:
		return clone(r.nic)
	case r.lb != nil:
		return s.lbView(r)
	case r.pip != nil:
		return s.pipView(r)
	case r.asg != nil:
		return clone(r.asg)
	}
	return nil
}

func (s *Server) list(r *http.Request, rt route) (int, any, http.Header, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groupOf(rt.group) == nil {
		return 0, nil, nil, s.groupError(rt.group)
	}
	var items []any
	prefix := strings.ToLower(s.resourceID(rt.group, rt.kind, rt.name, ""))
	if rt.kind.child == "" {
		prefix = strings.TrimSuffix(prefix, "/")
	}
	for _, id := range sortedKeys(s.resources) {
		res := s.resources[id]
		if res.kind == rt.kind && strings.EqualFold(res.group, rt.group) && (rt.kind.child == "" || strings.HasPrefix(id, prefix)) {
			items = append(items, s.view(res))
		}
	}
	out, e := s.page(r, items)
	if e != nil {
		return 0, nil, nil, e
	}
	return http.StatusOK, out, nil, nil
}

func (s *Server) put(rt route, op string, body []byte) (int, any, http.Header, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.groupError(rt.group); e != nil {
		return 0, nil, nil, e
	}
	// Names: 1-80 (64 for VMs) of letters, digits, '-', '_', '.'
	// (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules).
	name := rt.name
	if rt.kind.child != "" {
		name = rt.childName
	}
	if !resourceNameRE.MatchString(name) || rt.kind.typ == "virtualMachines" && rt.kind.child == "" && len(name) > 64 {
		return 0, nil, nil, errf(http.StatusBadRequest, "InvalidResourceName", "Resource name %s is invalid.", name)
	}
	id := s.resourceID(rt.group, rt.kind, rt.name, rt.childName)
	existing := s.resources[strings.ToLower(id)]
	if existing != nil && existing.busy {
		// One write at a time per resource (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-another-operation-in-progress, confirm).
		return 0, nil, nil, errf(http.StatusConflict, "AnotherOperationInProgress", "Operation on '%s' is not allowed since another operation is in progress.", name)
	}
	switch rt.kind.op {
	case "virtualMachines":
		return s.putVM(rt, op, id, existing, body)
	case "extensions":
		return s.putExtension(rt, id, existing, body)
	case "virtualNetworks":
		return s.putVNet(rt, id, existing, body)
	case "networkSecurityGroups":
		return s.putNSG(rt, id, existing, body)
	case "networkInterfaces":
		return s.putNIC(rt, id, existing, body)
	case "loadBalancers":
		return s.putLB(rt, id, existing, body)
	case "publicIPAddresses":
		return s.putPublicIP(rt, id, existing, body)
	case "applicationSecurityGroups":
		return s.putASG(rt, id, existing, body)
	}
	return 0, nil, nil, errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "PUT is not supported for %s in the lab.", rt.kind.fullType())
}

var resourceNameRE = regexp.MustCompile(`^[A-Za-z0-9][-\w.]{0,79}$`)

// accepted finishes a PUT: the resource is stored as Creating (or Updating)
// and an operation turns it Succeeded, or Failed with an injected error.
func (s *Server) accepted(r *resource, existed bool, op string, onDone func() []func()) (int, any, http.Header, *Error) {
	state := "Creating"
	if existed || r.kind.namespace == "Microsoft.Network" {
		state = "Updating" // the Network RP reports Updating while it applies a PUT
	}
	setState(r, state)
	r.busy = true
	s.resources[strings.ToLower(r.id)] = r
	fail := s.asyncFailure(op)
	h := s.startOperation(r.kind.namespace, false, func() (*Error, []func()) {
		r.busy = false
		if s.resources[strings.ToLower(r.id)] != r {
			return nil, nil
		}
		if fail != nil {
			setState(r, "Failed")
			return fail, nil
		}
		setState(r, "Succeeded")
		if onDone != nil {
			return nil, onDone()
		}
		return nil, nil
	})
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	return status, s.view(r), h, nil
}

func setState(r *resource, state string) {
	switch {
	case r.vm != nil:
		r.vm.Properties.ProvisioningState = ptr(state)
	case r.ext != nil:
		r.ext.Properties.ProvisioningState = ptr(state)
	case r.vnet != nil:
		ns := armnetwork.ProvisioningState(state)
		r.vnet.Properties.ProvisioningState = &ns
		for _, sn := range r.vnet.Properties.Subnets {
			sn.Properties.ProvisioningState = &ns
		}
	case r.nsg != nil:
		ns := armnetwork.ProvisioningState(state)
		r.nsg.Properties.ProvisioningState = &ns
	case r.nic != nil:
		ns := armnetwork.ProvisioningState(state)
		r.nic.Properties.ProvisioningState = &ns
	case r.lb != nil:
		ns := armnetwork.ProvisioningState(state)
		r.lb.Properties.ProvisioningState = &ns
	case r.pip != nil:
		ns := armnetwork.ProvisioningState(state)
		r.pip.Properties.ProvisioningState = &ns
	case r.asg != nil:
		ns := armnetwork.ProvisioningState(state)
		r.asg.Properties.ProvisioningState = &ns
	case r.disk != nil:
		r.disk.Properties.ProvisioningState = ptr(state)
	}
}

func (s *Server) delete(rt route) (int, any, http.Header, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.groupError(rt.group); e != nil {
		return 0, nil, nil, e
	}
	r := s.lookup(rt.group, rt.kind, rt.name, rt.childName)
	if r == nil {
		// DELETE of a resource that does not exist answers 204
		// (https://github.com/Azure/azure-resource-manager-rpc/blob/master/v1.0/resource-api-reference.md#delete-resource).
		return http.StatusNoContent, nil, nil, nil
	}
	if r.busy {
		return 0, nil, nil, errf(http.StatusConflict, "AnotherOperationInProgress", "Operation on '%s' is not allowed since another operation is in progress.", r.name)
	}
	if e := s.inUse(r); e != nil {
		return 0, nil, nil, e
	}
	r.busy = true
	if r.vm != nil {
		setState(r, "Deleting")
	}
	h := s.startOperation(r.kind.namespace, true, func() (*Error, []func()) {
		r.busy = false
		if s.resources[strings.ToLower(r.id)] != r {
			return nil, nil
		}
		return nil, s.remove(r)
	})
	return http.StatusAccepted, nil, h, nil
}

// inUse refuses to delete what another resource still references. Codes:
// https://learn.microsoft.com/azure/virtual-network/virtual-network-troubleshoot-nva (NicInUse) and
// the Network RP's InUse* codes (https://learn.microsoft.com/azure/virtual-network/virtual-network-manage-subnet#delete-a-subnet, confirm).
func (s *Server) inUse(r *resource) *Error {
	switch {
	case r.nic != nil && r.nic.Properties.VirtualMachine != nil:
		return errf(http.StatusBadRequest, "NicInUse", "Network Interface %s is used by existing resource %s. In order to delete the network interface, it must be dissociated from the resource.", r.id, deref(r.nic.Properties.VirtualMachine.ID))
	case r.nsg != nil:
		for _, o := range s.resources {
			if o.nic != nil && o.nic.Properties.NetworkSecurityGroup != nil && strings.EqualFold(deref(o.nic.Properties.NetworkSecurityGroup.ID), r.id) {
				return errf(http.StatusBadRequest, "InUseNetworkSecurityGroupCannotBeDeleted", "Network security group %s cannot be deleted because it is in use by the following resources: %s.", r.id, o.id)
			}
		}
	case r.vnet != nil:
		for _, o := range s.resources {
			if o.nic != nil && strings.HasPrefix(strings.ToLower(nicSubnet(o.nic)), strings.ToLower(r.id)+"/") {
				return errf(http.StatusBadRequest, "InUseSubnetCannotBeDeleted", "Subnet %s is in use by %s and cannot be deleted.", nicSubnet(o.nic), o.id)
			}
		}
		if sub, fe := s.subnetUserLB(r.id, nil); fe != "" {
			return errf(http.StatusBadRequest, "InUseSubnetCannotBeDeleted", "Subnet %s is in use by %s and cannot be deleted.", sub, fe)
		}
	case r.pip != nil:
		if fe := s.pipUser(r.id); fe != "" {
			return pipInUse(r.id, fe)
		}
	case r.asg != nil:
		// "Application Security Group X cannot be deleted because it is
		// referenced by IpConfiguration(s) ipconfig1." (Azure/azure-cli#12591;
		// the report shows no code); an NSG rule naming it holds it too
		// (hashicorp/terraform-provider-azurerm#8989).
		if user := s.asgUser(r.id); user != "" {
			return errf(http.StatusBadRequest, "InUseApplicationSecurityGroupCannotBeDeleted", "Application Security Group %s cannot be deleted because it is referenced by %s.", r.name, user)
		}
	case r.lb != nil:
		if ipc := s.poolMember(r); ipc != "" {
			return lbInUse(r.id, ipc)
		}
	case r.disk != nil && r.disk.ManagedBy != nil:
		return errf(http.StatusConflict, "OperationNotAllowed", "Disk %s is attached to VM %s.", r.name, deref(r.disk.ManagedBy))
	}
	return nil
}

// remove deletes r and what goes with it, and returns the hooks to run.
func (s *Server) remove(r *resource) []func() {
	delete(s.resources, strings.ToLower(r.id))
	var hooks []func()
	if r.vm != nil {
		for id, o := range s.resources {
			if o.ext != nil && strings.HasPrefix(id, strings.ToLower(r.id)+"/") {
				delete(s.resources, id)
			}
		}
		// deleteOption Delete takes the OS disk and the NIC with the VM; the
		// default, Detach, leaves them (mod: armcompute/v8 models.go OSDisk.DeleteOption,
		// NetworkInterfaceReferenceProperties.DeleteOption).
		p := r.vm.Properties
		if d := s.lookup(r.group, diskKind, deref(p.StorageProfile.OSDisk.Name), ""); d != nil {
			if deref(p.StorageProfile.OSDisk.DeleteOption) == armcompute.DiskDeleteOptionTypesDelete {
				delete(s.resources, strings.ToLower(d.id))
			} else {
				d.disk.ManagedBy = nil
			}
		}
		for _, ref := range p.NetworkProfile.NetworkInterfaces {
			nic := s.resources[strings.ToLower(deref(ref.ID))]
			if nic == nil {
				continue
			}
			if ref.Properties != nil && deref(ref.Properties.DeleteOption) == armcompute.DeleteOptionsDelete {
				delete(s.resources, strings.ToLower(nic.id))
			} else {
				nic.nic.Properties.VirtualMachine = nil
			}
		}
		if s.opts.OnDeleted != nil {
			vm := s.vmOf(r)
			hooks = append(hooks, func() { s.opts.OnDeleted(vm) })
		}
	}
	return hooks
}

var diskKind = &kinds[2]

// nicSubnet is the subnet a NIC's first IP configuration is in; "" for no NIC.
func nicSubnet(n *armnetwork.Interface) string {
	if n == nil || n.Properties == nil || len(n.Properties.IPConfigurations) == 0 || n.Properties.IPConfigurations[0].Properties == nil ||
		n.Properties.IPConfigurations[0].Properties.Subnet == nil {
		return ""
	}
	return deref(n.Properties.IPConfigurations[0].Properties.Subnet.ID)
}

// --- Microsoft.Network ---

func (s *Server) putVNet(rt route, id string, existing *resource, body []byte) (int, any, http.Header, *Error) {
	var in armnetwork.VirtualNetwork
	if e := decode(body, &in); e != nil {
		return 0, nil, nil, e
	}
	if e := s.checkTracked(in.Location, in.Tags); e != nil {
		return 0, nil, nil, e
	}
	if in.Properties == nil || in.Properties.AddressSpace == nil || len(in.Properties.AddressSpace.AddressPrefixes) == 0 {
		return 0, nil, nil, errf(http.StatusBadRequest, "InvalidAddressSpace", "Virtual network %s has no address space.", rt.name)
	}
	var space []netip.Prefix
	for _, p := range in.Properties.AddressSpace.AddressPrefixes {
		pfx, err := netip.ParsePrefix(deref(p))
		if err != nil || pfx.Masked() != pfx {
			return 0, nil, nil, errf(http.StatusBadRequest, "InvalidAddressPrefixFormat", "Address prefix %s of resource %s is not formatted correctly.", deref(p), id)
		}
		space = append(space, pfx)
	}
	var keep []string
	for _, sn := range in.Properties.Subnets {
		if sn.Properties == nil {
			return 0, nil, nil, errf(http.StatusBadRequest, "InvalidRequestFormat", "Subnet %s has no properties.", deref(sn.Name))
		}
		pfx, err := netip.ParsePrefix(deref(sn.Properties.AddressPrefix))
		// A subnet must lie in the address space (https://learn.microsoft.com/azure/virtual-network/virtual-network-manage-subnet).
		if err != nil || !slices.ContainsFunc(space, func(a netip.Prefix) bool { return a.Bits() <= pfx.Bits() && a.Contains(pfx.Addr()) }) {
			return 0, nil, nil, errf(http.StatusBadRequest, "NetcfgSubnetRangeOutsideVnet", "Subnet '%s' is not valid because its IP address range is outside the IP address range of virtual network '%s'.", deref(sn.Name), rt.name)
		}
		sn.ID = ptr(id + "/subnets/" + deref(sn.Name))
		sn.Type = ptr("Microsoft.Network/virtualNetworks/subnets")
		keep = append(keep, strings.ToLower(deref(sn.ID)))
	}
	// A PUT that drops a subnet still used by a NIC or a load balancer's frontend fails.
	for _, o := range s.resources {
		if sub := strings.ToLower(nicSubnet(o.nic)); o.nic != nil && strings.HasPrefix(sub, strings.ToLower(id)+"/") && !slices.Contains(keep, sub) {
			return 0, nil, nil, errf(http.StatusBadRequest, "InUseSubnetCannotBeDeleted", "Subnet %s is in use by %s and cannot be deleted.", sub, o.id)
		}
	}
	if sub, fe := s.subnetUserLB(id, keep); fe != "" {
		return 0, nil, nil, errf(http.StatusBadRequest, "InUseSubnetCannotBeDeleted", "Subnet %s is in use by %s and cannot be deleted.", sub, fe)
	}
	in.ID, in.Name, in.Type = ptr(id), ptr(rt.name), ptr("Microsoft.Network/virtualNetworks")
	return s.accepted(&resource{id: id, group: rt.group, name: rt.name, kind: rt.kind, vnet: &in}, existing != nil, "virtualNetworks.Put", nil)
}

func (s *Server) putNSG(rt route, id string, existing *resource, body []byte) (int, any, http.Header, *Error) {
	var in armnetwork.SecurityGroup
	if e := decode(body, &in); e != nil {
		return 0, nil, nil, e
	}
	if e := s.checkTracked(in.Location, in.Tags); e != nil {
		return 0, nil, nil, e
	}
	if in.Properties == nil {
		in.Properties = &armnetwork.SecurityGroupPropertiesFormat{}
	}
	// Priorities are 100-4096 and unique per direction
	// (https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#security-rules).
	seen := map[string]bool{}
	for _, r := range in.Properties.SecurityRules {
		p := r.Properties
		if p == nil || p.Priority == nil || *p.Priority < 100 || *p.Priority > 4096 {
			return 0, nil, nil, errf(http.StatusBadRequest, "SecurityRuleInvalidPriority", "Security rule %s has invalid priority. Value provided must be between 100 and 4096.", deref(r.Name))
		}
		key := fmt.Sprintf("%s/%d", deref(p.Direction), *p.Priority)
		if seen[key] {
			return 0, nil, nil, errf(http.StatusBadRequest, "SecurityRuleConflict", "Security rule %s conflicts with another rule of the same priority and direction.", deref(r.Name))
		}
		seen[key] = true
		if p.Access == nil || p.Direction == nil || p.Protocol == nil {
			return 0, nil, nil, errf(http.StatusBadRequest, "InvalidRequestFormat", "Security rule %s needs access, direction and protocol.", deref(r.Name))
		}
		if src := deref(p.SourceAddressPrefix); src != "" && !addressPrefixOK(src) {
			return 0, nil, nil, errf(http.StatusBadRequest, "SecurityRuleInvalidAddressPrefix", "Security rule %s has invalid Address prefix. Value provided: %s", deref(r.Name), src)
		}
		for _, g := range append(slices.Clone(p.SourceApplicationSecurityGroups), p.DestinationApplicationSecurityGroups...) {
			if e := s.asgRef(g, id); e != nil {
				return 0, nil, nil, e
			}
		}
		r.ID = ptr(id + "/securityRules/" + deref(r.Name))
		ps := armnetwork.ProvisioningStateSucceeded
		p.ProvisioningState = &ps
	}
	in.ID, in.Name, in.Type = ptr(id), ptr(rt.name), ptr("Microsoft.Network/networkSecurityGroups")
	return s.accepted(&resource{id: id, group: rt.group, name: rt.name, kind: rt.kind, nsg: &in}, existing != nil, "networkSecurityGroups.Put", nil)
}

// serviceTagRE is a service tag's form, e.g. AzureLoadBalancer or
// Storage.WestEurope; a rule's address prefix is '*', an address, a CIDR
// or a service tag
// (https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#security-rules,
// https://learn.microsoft.com/azure/virtual-network/service-tags-overview#available-service-tags).
var serviceTagRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)?$`)

func addressPrefixOK(p string) bool {
	if p == "*" || serviceTagRE.MatchString(p) {
		return true
	}
	if _, err := netip.ParsePrefix(p); err == nil {
		return true
	}
	_, err := netip.ParseAddr(p)
	return err == nil
}

// subnetPrefix finds a subnet by ID.
func (s *Server) subnetPrefix(subnetID string) (netip.Prefix, bool) {
	vnetID, _, ok := strings.Cut(strings.ToLower(subnetID), "/subnets/")
	if !ok {
		return netip.Prefix{}, false
	}
	v := s.resources[vnetID]
	if v == nil || v.vnet == nil {
		return netip.Prefix{}, false
	}
	for _, sn := range v.vnet.Properties.Subnets {
		if strings.EqualFold(deref(sn.ID), subnetID) {
			p, err := netip.ParsePrefix(deref(sn.Properties.AddressPrefix))
			return p, err == nil
		}
	}
	return netip.Prefix{}, false
}

func (s *Server) putNIC(rt route, id string, existing *resource, body []byte) (int, any, http.Header, *Error) {
	var in armnetwork.Interface
	if e := decode(body, &in); e != nil {
		return 0, nil, nil, e
	}
	if e := s.checkTracked(in.Location, in.Tags); e != nil {
		return 0, nil, nil, e
	}
	subnet := nicSubnet(&in)
	pfx, ok := s.subnetPrefix(subnet)
	if !ok {
		return 0, nil, nil, errf(http.StatusBadRequest, "InvalidResourceReference", "Resource %s referenced by resource %s was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.", subnet, id)
	}
	if g := in.Properties.NetworkSecurityGroup; g != nil {
		if o := s.resources[strings.ToLower(deref(g.ID))]; o == nil || o.nsg == nil {
			return 0, nil, nil, errf(http.StatusBadRequest, "InvalidResourceReference", "Resource %s referenced by resource %s was not found.", deref(g.ID), id)
		}
	}
	ipc := in.Properties.IPConfigurations[0]
	ipc.ID = ptr(id + "/ipConfigurations/" + deref(ipc.Name))
	if ipc.Properties != nil {
		for _, g := range ipc.Properties.ApplicationSecurityGroups {
			if e := s.asgRef(g, id); e != nil {
				return 0, nil, nil, e
			}
			if e := s.asgVNet(deref(g.ID), id, subnet); e != nil {
				return 0, nil, nil, e
			}
		}
	}
	if e := s.checkPools(id, ipc); e != nil {
		return 0, nil, nil, e
	}
	// virtualMachine is READ-ONLY (armnetwork/v9 models.go, InterfacePropertiesFormat):
	// ARM keeps its own, whatever a PUT's body
	// (often a GET's, read before the VM went) says.
	in.Properties.VirtualMachine = nil
	if existing != nil {
		in.Properties.VirtualMachine = existing.nic.Properties.VirtualMachine
	}
	if existing != nil && nicSubnet(existing.nic) == subnet {
		ipc.Properties.PrivateIPAddress = existing.nic.Properties.IPConfigurations[0].Properties.PrivateIPAddress
	} else {
		addr, e := s.allocIP(subnet, pfx)
		if e != nil {
			return 0, nil, nil, e
		}
		ipc.Properties.PrivateIPAddress = ptr(addr)
	}
	in.ID, in.Name, in.Type = ptr(id), ptr(rt.name), ptr("Microsoft.Network/networkInterfaces")
	return s.accepted(&resource{id: id, group: rt.group, name: rt.name, kind: rt.kind, nic: &in}, existing != nil, "networkInterfaces.Put", nil)
}

// allocIP hands out a subnet's next free address. Azure keeps the first
// four addresses of a subnet and the last
// (https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq#are-there-any-restrictions-on-using-ip-addresses-within-these-subnets).
func (s *Server) allocIP(subnet string, pfx netip.Prefix) (string, *Error) {
	n := s.nextIP[strings.ToLower(subnet)] + 4
	addr := pfx.Masked().Addr()
	for range n {
		addr = addr.Next()
	}
	if !pfx.Contains(addr.Next()) {
		return "", errf(http.StatusBadRequest, "SubnetIsFull", "Subnet %s has no free address.", subnet)
	}
	s.nextIP[strings.ToLower(subnet)]++
	return addr.String(), nil
}

// --- Microsoft.Compute ---

// Sizes is the lab region's VM size catalogue. A size outside it fails with
// SkuNotAvailable (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-sku-not-available).
var Sizes = []string{"Standard_B2s", "Standard_D2s_v3", "Standard_D4s_v3", "Standard_D2s_v5", "Standard_D4s_v5", "Standard_D8s_v5",
	"Standard_D4ds_v5", "Standard_E4s_v5", "Standard_D4s_v6", "Standard_F4s_v2"}

// Images is the lab region's marketplace catalogue (publisher:offer:sku),
// the images clouds/azure uses by default; any version resolves to "1.0.0".
var Images = []string{
	"Canonical:ubuntu-24_04-lts:server",
	"MicrosoftWindowsServer:WindowsServer:2019-datacenter-core-smalldisk-g2",
	"MicrosoftWindowsServer:WindowsServer:2022-datacenter-core-smalldisk-g2",
	"MicrosoftWindowsServer:WindowsServer:2025-datacenter-core-smalldisk-g2",
}

// reservedUsers are admin names Azure refuses, and adminPassword must be
// 12-123 characters with three of: lower, upper, digit, special
// (https://learn.microsoft.com/azure/virtual-machines/windows/faq#what-are-the-username-requirements-when-creating-a-vm-
// and #what-are-the-password-requirements-when-creating-a-vm-).
var reservedUsers = []string{"administrator", "admin", "user", "user1", "test", "user2", "test1", "user3", "admin1", "1", "123", "a",
	"actuser", "adm", "admin2", "aspnet", "backup", "console", "david", "guest", "john", "owner", "root", "server", "sql", "support",
	"support_388945a0", "sys", "test2", "test3", "user4", "user5"}

func passwordOK(p string) bool {
	if len(p) < 12 || len(p) > 123 {
		return false
	}
	var lower, upper, digit, special int
	for _, r := range p {
		switch {
		case unicode.IsLower(r):
			lower = 1
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsDigit(r):
			digit = 1
		default:
			special = 1
		}
	}
	return lower+upper+digit+special >= 3
}

func invalidParam(target, format string, args ...any) *Error {
	e := errf(http.StatusBadRequest, "InvalidParameter", format, args...)
	e.Target = target
	return e
}

func (s *Server) putVM(rt route, op, id string, existing *resource, body []byte) (int, any, http.Header, *Error) {
	var in armcompute.VirtualMachine
	if e := decode(body, &in); e != nil {
		return 0, nil, nil, e
	}
	if e := s.checkTracked(in.Location, in.Tags); e != nil {
		return 0, nil, nil, e
	}
	p := in.Properties
	if p == nil || p.HardwareProfile == nil || p.StorageProfile == nil || p.StorageProfile.OSDisk == nil || p.OSProfile == nil || p.NetworkProfile == nil {
		return 0, nil, nil, invalidParam("properties", "The VM needs hardwareProfile, storageProfile.osDisk, osProfile and networkProfile.")
	}
	size := string(deref(p.HardwareProfile.VMSize))
	if !slices.ContainsFunc(Sizes, func(z string) bool { return strings.EqualFold(z, size) }) || s.noCapacity(size) {
		return 0, nil, nil, errf(http.StatusConflict, "SkuNotAvailable",
			"The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: %s' is currently not available in location '%s'. Please try another size or deploy to a different location or different zone.", size, s.opts.Location)
	}
	windows := deref(p.StorageProfile.OSDisk.OSType) == armcompute.OperatingSystemTypesWindows
	img := p.StorageProfile.ImageReference
	if img == nil || img.ID == nil && !slices.Contains(Images, deref(img.Publisher)+":"+deref(img.Offer)+":"+deref(img.SKU)) {
		urn := ""
		if img != nil {
			urn = deref(img.Publisher) + ":" + deref(img.Offer) + ":" + deref(img.SKU) + ":" + deref(img.Version)
		}
		return 0, nil, nil, errf(http.StatusNotFound, "PlatformImageNotFound", "The platform image '%s' is not available. Verify that all fields in the storage profile are correct.", urn)
	}
	isWindowsImage := strings.HasPrefix(deref(img.Publisher), "MicrosoftWindows")
	if img.ID == nil && isWindowsImage != windows {
		return 0, nil, nil, invalidParam("storageProfile.osDisk.osType", "The osType of the OS disk does not match the image.")
	}
	osp := p.OSProfile
	// computerName: at most 15 characters on Windows, 64 on Linux (mod: armcompute/v8 models.go OSProfile.ComputerName).
	cn := deref(osp.ComputerName)
	if cn == "" || windows && (len(cn) > 15 || strings.Trim(cn, "0123456789") == "") || len(cn) > 64 {
		return 0, nil, nil, invalidParam("osProfile.computerName", "The value of parameter osProfile.computerName is invalid.")
	}
	user := deref(osp.AdminUsername)
	if user == "" || slices.Contains(reservedUsers, strings.ToLower(user)) || len(user) > 20 && windows {
		return 0, nil, nil, invalidParam("osProfile.adminUsername", "The Admin Username specified is not allowed.")
	}
	b := Boot{AdminUsername: user, AdminPassword: deref(osp.AdminPassword)}
	if osp.CustomData != nil {
		raw, err := base64.StdEncoding.DecodeString(*osp.CustomData)
		if err != nil || len(*osp.CustomData) > 65535 {
			return 0, nil, nil, invalidParam("osProfile.customData", "Custom data in OSProfile must be in Base64 encoding and with a maximum length of 65535 characters.")
		}
		b.CustomData = string(raw)
	}
	if windows {
		if !passwordOK(b.AdminPassword) {
			return 0, nil, nil, invalidParam("adminPassword", "The supplied password must be between 12-123 characters long and must satisfy at least 3 of password complexity requirements.")
		}
	} else {
		lc := osp.LinuxConfiguration
		if lc == nil || !deref(lc.DisablePasswordAuthentication) || lc.SSH == nil || len(lc.SSH.PublicKeys) == 0 {
			if b.AdminPassword == "" {
				return 0, nil, nil, invalidParam("linuxConfiguration.ssh.publicKeys", "Authentication using either SSH or by user name and password must be enabled in Linux profile.")
			}
		}
		if lc != nil && lc.SSH != nil {
			for _, k := range lc.SSH.PublicKeys {
				// The only path Azure accepts (https://learn.microsoft.com/azure/virtual-machines/linux/create-ssh-keys-detailed, confirm).
				if deref(k.Path) != "/home/"+user+"/.ssh/authorized_keys" {
					return 0, nil, nil, invalidParam("linuxConfiguration.ssh.publicKeys.path", "Destination path for SSH public keys is currently limited to its default value /home/%s/.ssh/authorized_keys due to a known issue in Linux provisioning agent.", user)
				}
				b.SSHPublicKeys = append(b.SSHPublicKeys, deref(k.KeyData))
			}
		}
	}
	if e := s.checkDiskEncryptionSet(p.StorageProfile.OSDisk.ManagedDisk); e != nil {
		return 0, nil, nil, e
	}
	if len(p.NetworkProfile.NetworkInterfaces) == 0 {
		return 0, nil, nil, invalidParam("networkProfile", "At least one network interface is required.")
	}
	nicRef := p.NetworkProfile.NetworkInterfaces[0]
	nic := s.resources[strings.ToLower(deref(nicRef.ID))]
	if nic == nil || nic.nic == nil {
		return 0, nil, nil, errf(http.StatusNotFound, "NotFound", "Resource %s not found.", deref(nicRef.ID))
	}
	if vmRef := nic.nic.Properties.VirtualMachine; vmRef != nil && !strings.EqualFold(deref(vmRef.ID), id) {
		return 0, nil, nil, errf(http.StatusBadRequest, "NicInUse", "Network interface %s is in use by %s.", nic.id, deref(vmRef.ID))
	}
	if existing != nil {
		// customData, computerName and adminUsername cannot change after creation
		// (mod: armcompute/v8 models.go OSProfile; https://learn.microsoft.com/azure/virtual-machines/custom-data).
		old := existing.boot
		for _, c := range []struct{ prop, a, b string }{
			{"customData", old.CustomData, b.CustomData}, {"computerName", deref(existing.vm.Properties.OSProfile.ComputerName), cn},
			{"adminUsername", old.AdminUsername, user},
		} {
			if c.a != c.b {
				e := errf(http.StatusConflict, "PropertyChangeNotAllowed", "Changing property '%s' is not allowed.", c.prop)
				e.Target = c.prop
				return 0, nil, nil, e
			}
		}
	}
	in.ID, in.Name, in.Type = ptr(id), ptr(rt.name), ptr("Microsoft.Compute/virtualMachines")
	if img.ID == nil {
		img.ExactVersion = ptr("1.0.0")
	}
	if p.StorageProfile.OSDisk.Name == nil {
		p.StorageProfile.OSDisk.Name = ptr(rt.name + "_OsDisk_1")
	}
	// vmId is READ-ONLY and the VM's for life (armcompute/v8 models.go,
	// VirtualMachineProperties.VMID): a PUT on an existing VM keeps it.
	p.VMID = ptr(newID())
	if existing != nil && existing.vm != nil && existing.vm.Properties != nil && existing.vm.Properties.VMID != nil {
		p.VMID = existing.vm.Properties.VMID
	}
	r := &resource{id: id, group: rt.group, name: rt.name, kind: rt.kind, vm: &in, boot: b}
	nic.nic.Properties.VirtualMachine = &armnetwork.SubResource{ID: ptr(id)}
	return s.accepted(r, existing != nil, op, func() []func() {
		s.ensureDisk(r)
		if s.opts.OnRunning == nil {
			return nil
		}
		vm := s.vmOf(r)
		return []func(){func() { s.opts.OnRunning(vm) }}
	})
}

// ensureDisk creates the VM's managed OS disk once its creation succeeded.
func (s *Server) ensureDisk(r *resource) {
	od := r.vm.Properties.StorageProfile.OSDisk
	name := deref(od.Name)
	if s.lookup(r.group, diskKind, name, "") != nil {
		return
	}
	id := s.resourceID(r.group, diskKind, name, "")
	size := deref(od.DiskSizeGB)
	if size == 0 {
		size = 30
	}
	od.ManagedDisk.ID = ptr(id)
	s.resources[strings.ToLower(id)] = &resource{id: id, group: r.group, name: name, kind: diskKind, disk: &armcompute.Disk{
		ID: ptr(id), Name: ptr(name), Type: ptr("Microsoft.Compute/disks"), Location: ptr(s.opts.Location), ManagedBy: ptr(r.id),
		Properties: &armcompute.DiskProperties{DiskSizeGB: ptr(size), OSType: od.OSType, ProvisioningState: ptr("Succeeded"), Encryption: encryptionOf(od.ManagedDisk)},
	}}
}

func (s *Server) putExtension(rt route, id string, existing *resource, body []byte) (int, any, http.Header, *Error) {
	var in armcompute.VirtualMachineExtension
	if e := decode(body, &in); e != nil {
		return 0, nil, nil, e
	}
	if e := s.checkLocation(in.Location); e != nil {
		return 0, nil, nil, e
	}
	vm := s.lookup(rt.group, &kinds[0], rt.name, "")
	if vm == nil {
		return 0, nil, nil, errf(http.StatusNotFound, "ParentResourceNotFound", "Can not perform requested operation on nested resource. Parent resource '%s' not found.", rt.name)
	}
	if deref(vm.vm.Properties.ProvisioningState) != "Succeeded" {
		return 0, nil, nil, errf(http.StatusConflict, "OperationNotAllowed", "Operation 'PUT extension' is not allowed on VM '%s' since the VM is not provisioned.", rt.name)
	}
	p := in.Properties
	// CustomScriptExtension (publisher Microsoft.Compute) is the Windows one; Linux uses Microsoft.Azure.Extensions/CustomScript
	// (https://learn.microsoft.com/azure/virtual-machines/extensions/custom-script-windows).
	if p == nil || deref(p.Publisher) != "Microsoft.Compute" || deref(p.Type) != "CustomScriptExtension" || !strings.HasPrefix(deref(p.TypeHandlerVersion), "1.") {
		return 0, nil, nil, invalidParam("properties.type", "The lab serves only Microsoft.Compute/CustomScriptExtension 1.x.")
	}
	if deref(vm.vm.Properties.StorageProfile.OSDisk.OSType) != armcompute.OperatingSystemTypesWindows {
		return 0, nil, nil, errf(http.StatusConflict, "OperationNotAllowed", "The extension type CustomScriptExtension is not supported for the OS type Linux.")
	}
	protected, _ := p.ProtectedSettings.(map[string]any)
	cmd, _ := protected["commandToExecute"].(string)
	if cmd == "" {
		return 0, nil, nil, invalidParam("protectedSettings.commandToExecute", "The extension needs commandToExecute.")
	}
	if settings, _ := p.Settings.(map[string]any); settings["commandToExecute"] != nil {
		return 0, nil, nil, invalidParam("settings.commandToExecute", "commandToExecute is set in both settings and protectedSettings.")
	}
	in.ID, in.Name, in.Type = ptr(id), ptr(rt.childName), ptr("Microsoft.Compute/virtualMachines/extensions")
	r := &resource{id: id, group: rt.group, name: rt.childName, kind: rt.kind, ext: &in}
	return s.accepted(r, existing != nil, "extensions.Put", func() []func() {
		vm.boot.ProtectedCommand = cmd
		if s.opts.OnRunning == nil {
			return nil
		}
		v := s.vmOf(vm)
		return []func(){func() { s.opts.OnRunning(v) }}
	})
}

func (s *Server) vmOf(r *resource) VM {
	p := r.vm.Properties
	v := VM{ID: r.id, Name: r.name, Group: r.group, Size: string(deref(p.HardwareProfile.VMSize)), OS: "linux",
		ComputerName: deref(p.OSProfile.ComputerName), State: deref(p.ProvisioningState), VMID: deref(p.VMID), Tags: map[string]string{}, Boot: r.boot}
	v.Boot.SSHPublicKeys = slices.Clone(r.boot.SSHPublicKeys)
	if img := p.StorageProfile.ImageReference; img != nil {
		v.Image = deref(img.Publisher) + ":" + deref(img.Offer) + ":" + deref(img.SKU)
	}
	if deref(p.StorageProfile.OSDisk.OSType) == armcompute.OperatingSystemTypesWindows {
		v.OS = "windows"
	}
	if md := p.StorageProfile.OSDisk.ManagedDisk; md != nil && md.DiskEncryptionSet != nil {
		v.DiskEncryptionSetID = deref(md.DiskEncryptionSet.ID)
	}
	for k, val := range r.vm.Tags {
		v.Tags[k] = deref(val)
	}
	for _, ref := range p.NetworkProfile.NetworkInterfaces {
		if nic := s.resources[strings.ToLower(deref(ref.ID))]; nic != nil && nic.nic != nil {
			v.PrivateIP = deref(nic.nic.Properties.IPConfigurations[0].Properties.PrivateIPAddress)
		}
	}
	return v
}

// --- inspection ---

// VMs returns every VM, in name order.
func (s *Server) VMs() []VM {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []VM
	for _, id := range sortedKeys(s.resources) {
		if r := s.resources[id]; r.vm != nil {
			out = append(out, s.vmOf(r))
		}
	}
	return out
}

// Objects lists what exists in a resource group as "<type>/<name>"
// (the group itself as "resourceGroups/<name>"), in order.
func (s *Server) Objects(group string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if g := s.groupOf(group); g != nil {
		out = append(out, "resourceGroups/"+g.name)
	}
	for _, id := range sortedKeys(s.resources) {
		if r := s.resources[id]; strings.EqualFold(r.group, group) {
			out = append(out, objectName(r))
		}
	}
	return out
}

// Tagged lists, as "<type>/<name>", everything whose tag key has value:
// resource groups so tagged with all they hold (a VM's OS disk carries no
// tags of its own), tagged resources elsewhere, and the vault's secrets,
// live ("secrets/<name>") or soft-deleted ("deletedsecrets/<name>").
func (s *Server) Tagged(key, value string) []string {
	s.mu.Lock()
	var groups []string
	for _, k := range sortedKeys(s.groups) {
		if g := s.groups[k]; deref(g.tags[key]) == value {
			groups = append(groups, g.name)
		}
	}
	var out []string
	for _, id := range sortedKeys(s.resources) {
		r := s.resources[id]
		if slices.ContainsFunc(groups, func(g string) bool { return strings.EqualFold(g, r.group) }) {
			continue
		}
		if tagsOf(r)[key] != nil && deref(tagsOf(r)[key]) == value {
			out = append(out, objectName(r))
		}
	}
	for _, k := range sortedKeys(s.vault.secrets) {
		if sec := s.vault.secrets[k]; deref(sec.versions[len(sec.versions)-1].Tags[key]) == value {
			out = append(out, "secrets/"+sec.name)
		}
	}
	for _, k := range sortedKeys(s.vault.deleted) {
		if sec := s.vault.deleted[k]; deref(sec.versions[len(sec.versions)-1].Tags[key]) == value {
			out = append(out, "deletedsecrets/"+sec.name)
		}
	}
	s.mu.Unlock()
	for _, g := range groups {
		out = append(out, s.Objects(g)...)
	}
	return out
}

// TaggedTags maps what Tagged lists to its tags, leaving out a VM's OS
// disk, which ARM creates with the VM and does not tag from it (subnets
// are part of their virtual network, not resources here).
func (s *Server) TaggedTags(key, value string) map[string]map[string]string {
	listed := map[string]bool{}
	for _, o := range s.Tagged(key, value) {
		listed[o] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]string{}
	for _, g := range s.groups {
		if listed["resourceGroups/"+g.name] {
			out["resourceGroups/"+g.name] = plain(g.tags)
		}
	}
	for _, r := range s.resources {
		if listed[objectName(r)] && r.disk == nil {
			out[objectName(r)] = plain(tagsOf(r))
		}
	}
	for prefix, secrets := range map[string]map[string]*secret{"secrets/": s.vault.secrets, "deletedsecrets/": s.vault.deleted} {
		for _, sec := range secrets {
			if listed[prefix+sec.name] {
				out[prefix+sec.name] = plain(sec.versions[len(sec.versions)-1].Tags)
			}
		}
	}
	return out
}

// objectName is how Objects and Tagged name a resource: "<type>/<name>",
// and a child (a VM's extension, tagged on its own in ARM) under its
// parent, "virtualMachines/<vm>/extensions/<name>", as two VMs' extensions
// share a name.
func objectName(r *resource) string {
	if r.kind.child == "" {
		return r.kind.typ + "/" + r.name
	}
	parts := strings.Split(r.id, "/")
	return r.kind.typ + "/" + parts[len(parts)-3] + "/" + r.kind.child + "/" + r.name
}

// plain is a tag map without pointers.
func plain(t map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range t {
		out[k] = deref(v)
	}
	return out
}

func tagsOf(r *resource) map[string]*string {
	switch {
	case r.vm != nil:
		return r.vm.Tags
	case r.ext != nil:
		return r.ext.Tags
	case r.disk != nil:
		return r.disk.Tags
	case r.vnet != nil:
		return r.vnet.Tags
	case r.nsg != nil:
		return r.nsg.Tags
	case r.nic != nil:
		return r.nic.Tags
	case r.lb != nil:
		return r.lb.Tags
	case r.pip != nil:
		return r.pip.Tags
	case r.asg != nil:
		return r.asg.Tags
	}
	return nil
}

// OwnerNetwork makes, as a network's owner would through ARM, resource
// group rg (when missing) with virtual network vnet over cidr and its
// subnet subnet over subnetCIDR, untagged by any cluster, and returns the
// subnet's resource ID once the network is provisioned: the existing
// network a cluster is then placed in.
func (s *Server) OwnerNetwork(rg, vnet, cidr, subnet, subnetCIDR string) (string, error) {
	s.mu.Lock()
	if s.groupOf(rg) == nil {
		s.groups[strings.ToLower(rg)] = &group{name: rg, location: s.opts.Location}
	}
	s.mu.Unlock()
	body, err := json.Marshal(armnetwork.VirtualNetwork{
		Location: ptr(s.opts.Location),
		Properties: &armnetwork.VirtualNetworkPropertiesFormat{
			AddressSpace: &armnetwork.AddressSpace{AddressPrefixes: []*string{ptr(cidr)}},
			Subnets:      []*armnetwork.Subnet{{Name: ptr(subnet), Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: ptr(subnetCIDR)}}},
		},
	})
	if err != nil {
		return "", err
	}
	var k *kind
	for i := range kinds {
		if kinds[i].typ == "virtualNetworks" {
			k = &kinds[i]
		}
	}
	rt := route{sub: s.opts.SubscriptionID, group: rg, kind: k, name: vnet}
	if _, _, _, e := s.put(rt, "virtualNetworks.Put", body); e != nil {
		return "", fmt.Errorf("put virtual network %s: %s", vnet, e.Message)
	}
	id := s.resourceID(rg, k, vnet, "")
	for {
		s.mu.Lock()
		r := s.resources[strings.ToLower(id)]
		busy := r != nil && r.busy
		s.mu.Unlock()
		if r == nil {
			return "", fmt.Errorf("virtual network %s went away", vnet)
		}
		if !busy {
			return id + "/subnets/" + subnet, nil
		}
		time.Sleep(time.Millisecond)
	}
}

// putASG stores an application security group: a name for a set of NICs
// that NSG rules can name as source or destination
// (https://learn.microsoft.com/azure/virtual-network/application-security-groups).
func (s *Server) putASG(rt route, id string, existing *resource, body []byte) (int, any, http.Header, *Error) {
	var in armnetwork.ApplicationSecurityGroup
	if e := decode(body, &in); e != nil {
		return 0, nil, nil, e
	}
	if e := s.checkTracked(in.Location, in.Tags); e != nil {
		return 0, nil, nil, e
	}
	in.Properties = &armnetwork.ApplicationSecurityGroupPropertiesFormat{}
	in.ID, in.Name, in.Type = ptr(id), ptr(rt.name), ptr("Microsoft.Network/applicationSecurityGroups")
	return s.accepted(&resource{id: id, group: rt.group, name: rt.name, kind: rt.kind, asg: &in}, existing != nil, "applicationSecurityGroups.Put", nil)
}

// asgRef checks that a referenced application security group exists (in
// the caller's location: the lab has one). Caller holds s.mu.
func (s *Server) asgRef(g *armnetwork.ApplicationSecurityGroup, by string) *Error {
	if g == nil {
		return errf(http.StatusBadRequest, "InvalidRequestFormat", "Resource %s names an empty application security group.", by)
	}
	if o := s.resources[strings.ToLower(deref(g.ID))]; o == nil || o.asg == nil {
		return errf(http.StatusBadRequest, "InvalidResourceReference", "Resource %s referenced by resource %s was not found.", deref(g.ID), by)
	}
	return nil
}

// asgVNet refuses a NIC in another virtual network than the group's other
// members: "All network interfaces assigned to an application security
// group have to exist in the same virtual network that the first network
// interface assigned to the application security group is in"
// (https://learn.microsoft.com/azure/virtual-network/application-security-groups#allow-rules;
// the error code is the lab's, the page names none). Caller holds s.mu.
func (s *Server) asgVNet(asg, nic, subnet string) *Error {
	vnet := func(subnet string) string {
		i := strings.Index(strings.ToLower(subnet), "/subnets/")
		if i < 0 {
			return strings.ToLower(subnet)
		}
		return strings.ToLower(subnet[:i])
	}
	for _, id := range sortedKeys(s.resources) {
		o := s.resources[id]
		if o.nic == nil || strings.EqualFold(o.id, nic) {
			continue
		}
		for _, ipc := range o.nic.Properties.IPConfigurations {
			if ipc.Properties == nil || !namesASG(ipc.Properties.ApplicationSecurityGroups, asg) {
				continue
			}
			if other := nicSubnet(o.nic); vnet(other) != vnet(subnet) {
				return errf(http.StatusBadRequest, "ApplicationSecurityGroupNicsInDifferentVirtualNetworks", "Network interface %s cannot join application security group %s: its member %s is in virtual network %s, and all members must be in one virtual network.", nic, asg, o.id, vnet(other))
			}
		}
	}
	return nil
}

// asgUser names an IP configuration or NSG rule that references the
// application security group, "" when none. Caller holds s.mu.
func (s *Server) asgUser(asg string) string {
	for _, id := range sortedKeys(s.resources) {
		o := s.resources[id]
		switch {
		case o.nic != nil:
			for _, ipc := range o.nic.Properties.IPConfigurations {
				if ipc.Properties != nil && namesASG(ipc.Properties.ApplicationSecurityGroups, asg) {
					return "IpConfiguration(s) " + deref(ipc.Name) + " of " + o.name
				}
			}
		case o.nsg != nil:
			for _, r := range o.nsg.Properties.SecurityRules {
				if r.Properties != nil && (namesASG(r.Properties.SourceApplicationSecurityGroups, asg) || namesASG(r.Properties.DestinationApplicationSecurityGroups, asg)) {
					return "security rule " + deref(r.Name) + " of " + o.name
				}
			}
		}
	}
	return ""
}

// namesASG reports whether a list of application security group references names asg.
func namesASG(gs []*armnetwork.ApplicationSecurityGroup, asg string) bool {
	return slices.ContainsFunc(gs, func(g *armnetwork.ApplicationSecurityGroup) bool {
		return g != nil && strings.EqualFold(deref(g.ID), asg)
	})
}
