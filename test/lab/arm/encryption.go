package arm

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
)

// LabKeysGroup and LabDiskEncryptionSet name the disk encryption set every
// server has unless Options.DiskEncryptionSets says otherwise.
const (
	LabKeysGroup         = "mixedk8s-lab-keys"
	LabDiskEncryptionSet = "mixedk8s-lab-des"
)

// DiskEncryptionSetID is the resource ID of a disk encryption set of LabKeysGroup.
func (s *Server) DiskEncryptionSetID(name string) string {
	return "/subscriptions/" + s.opts.SubscriptionID + "/resourceGroups/" + LabKeysGroup + "/providers/Microsoft.Compute/diskEncryptionSets/" + name
}

// linkedDESRE is the fully qualified resource ID ARM expects of a reference
// to another resource; a disk's diskEncryptionSet.id names a
// Microsoft.Compute/diskEncryptionSets resource
// (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-invalid-template, LinkedInvalidPropertyId;
// armcompute DiskEncryptionSetParameters.ID).
var linkedDESRE = regexp.MustCompile(`(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/diskEncryptionSets/[^/]+$`)

// checkDiskEncryptionSet holds an OS disk's disk encryption set to ARM's
// rules: a well-formed resource ID, then a set that exists, else "BadRequest:
// DiskEncryptionSet '<id>' was not found" (as the Compute RP answers,
// gh:Azure/azure-cli#18355). The set's key and its access policy are Key
// Vault's concern, which the lab does not model for disks.
func (s *Server) checkDiskEncryptionSet(md *armcompute.ManagedDiskParameters) *Error {
	if md == nil || md.DiskEncryptionSet == nil {
		return nil
	}
	id := deref(md.DiskEncryptionSet.ID)
	if !linkedDESRE.MatchString(id) {
		return errf(http.StatusBadRequest, "LinkedInvalidPropertyId", "Property id '%s' at path 'properties.storageProfile.osDisk.managedDisk.diskEncryptionSet.id' is invalid. Expect fully qualified resource Id that start with '/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.", id)
	}
	if !s.desets[strings.ToLower(id)] {
		return errf(http.StatusBadRequest, "BadRequest", "DiskEncryptionSet '%s' was not found.", id)
	}
	return nil
}

// encryptionOf is a managed disk's encryption as ARM reports it:
// the customer's key through a disk encryption set, else the platform's.
func encryptionOf(md *armcompute.ManagedDiskParameters) *armcompute.Encryption {
	if md != nil && md.DiskEncryptionSet != nil {
		return &armcompute.Encryption{DiskEncryptionSetID: md.DiskEncryptionSet.ID, Type: ptr(armcompute.EncryptionTypeEncryptionAtRestWithCustomerKey)}
	}
	return &armcompute.Encryption{Type: ptr(armcompute.EncryptionTypeEncryptionAtRestWithPlatformKey)}
}
