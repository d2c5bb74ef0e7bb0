package azure

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// kindOfCode classifies an ARM or Key Vault error code. Codes:
// https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/common-deployment-errors
// and https://learn.microsoft.com/azure/key-vault/general/rest-error-codes.
func kindOfCode(status int, code, message string) clouds.Kind {
	switch code {
	case "TooManyRequests", "SubscriptionRequestsThrottled", "ResourceGroupRequestsThrottled", "Throttled":
		return clouds.KindThrottled
	case "InternalServerError", "InternalExecutionError", "ServiceUnavailable", "GatewayTimeout", "RetryableError",
		"AnotherOperationInProgress", "OperationPreempted", "ResourceGroupBeingDeleted",
		// A network object still used by a NIC or VM being deleted: retried once that is gone.
		"InUseSubnetCannotBeDeleted", "NicInUse", "InUseNetworkSecurityGroupCannotBeDeleted", "NicReservedForAnotherVm",
		// A public IP address still on a load balancer being deleted.
		"PublicIPAddressCannotBeDeleted":
		return clouds.KindTransient
	case "SkuNotAvailable", "AllocationFailed", "ZonalAllocationFailed", "OverconstrainedAllocationRequest", "OverconstrainedZonalAllocationRequest":
		return clouds.KindCapacity
	case "QuotaExceeded", "OperationNotAllowed":
		// ARM wraps core quota errors in OperationNotAllowed ("... exceeding approved ... quota");
		// other OperationNotAllowed are requests this subscription may not make.
		if code == "QuotaExceeded" || strings.Contains(strings.ToLower(message), "quota") {
			return clouds.KindQuota
		}
		return clouds.KindInvalid
	case "AuthorizationFailed", "LinkedAuthorizationFailed", "AuthenticationFailed", "InvalidAuthenticationToken",
		"InvalidAuthenticationTokenTenant", "ExpiredAuthenticationToken", "Unauthorized", "Forbidden", "ForbiddenByRbac",
		"SubscriptionNotFound", "InvalidSubscriptionId", "MissingSubscriptionRegistration":
		return clouds.KindAuth
	case "NotFound", "ResourceNotFound", "ResourceGroupNotFound", "ParentResourceNotFound", "SecretNotFound":
		return clouds.KindNotFound
	case "InvalidParameter", "InvalidRequestContent", "InvalidRequestFormat", "BadRequest", "PropertyChangeNotAllowed",
		"InvalidResourceReference", "PlatformImageNotFound", "InvalidApiVersionParameter", "NoRegisteredProviderFound",
		"LocationNotAvailableForResourceType", "InvalidResourceName", "InvalidTag", "LinkedInvalidPropertyId":
		return clouds.KindInvalid
	}
	switch {
	case status == http.StatusTooManyRequests:
		return clouds.KindThrottled
	case status >= 500:
		return clouds.KindTransient
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return clouds.KindAuth
	case status == http.StatusNotFound:
		return clouds.KindNotFound
	}
	return clouds.KindFatal
}

// call names one API call for error messages: the operation, the object
// and, for capacity errors, the pool whose size to change.
type call struct {
	op     string
	object string
	pool   string
}

// classify turns an SDK error into a *clouds.Error; context errors pass
// through unchanged so that cancellation stays cancellation.
func (k call) classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	ce := &clouds.Error{Op: k.op, Object: k.object, Err: err, Kind: clouds.KindFatal}
	var re *azcore.ResponseError
	var authErr *azidentity.AuthenticationFailedError
	var required *azidentity.AuthenticationRequiredError
	var ne net.Error
	switch {
	case errors.As(err, &re):
		ce.Code = re.ErrorCode
		ce.Kind = kindOfCode(re.StatusCode, re.ErrorCode, re.Error())
	case errors.As(err, &authErr), errors.As(err, &required),
		// DefaultAzureCredential found no source; its error type is unexported.
		strings.Contains(err.Error(), "DefaultAzureCredential: failed to acquire a token"):
		ce.Kind = clouds.KindAuth
	case errors.As(err, &ne):
		ce.Kind = clouds.KindTransient
	}
	ce.Fix = k.fix(ce)
	return ce
}

// actionRE finds the RBAC action a 403 names: ARM's AuthorizationFailed says
// "does not have authorization to perform action '<action>' over scope ...",
// Key Vault's ForbiddenByRbac "Action: '<action>'"
// (https://learn.microsoft.com/azure/role-based-access-control/troubleshooting).
var actionRE = regexp.MustCompile(`(?i)(?:perform action|Action:) '([^']+)'`)

// linkedRE finds the join actions and their scopes LinkedAuthorizationFailed
// names: "does not have permission to perform action(s) '<a>[,<a>]' on the
// linked scope(s) '<s>[,<s>]' (respectively)"
// (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-linked-authorization-failed).
var linkedRE = regexp.MustCompile(`perform action\(s\) '([^']+)' on the linked scope\(s\) '([^']+)'`)

// roleFor names the built-in role that grants an RBAC action, so that a
// 403 says which role to assign
// (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
func roleFor(action string) string {
	a := strings.ToLower(action)
	switch {
	case strings.HasPrefix(a, "microsoft.keyvault/vaults/secrets/"):
		return "Key Vault Secrets Officer on the vault"
	case strings.HasPrefix(a, "microsoft.compute/"):
		return "Virtual Machine Contributor on the resource group"
	case strings.HasPrefix(a, "microsoft.network/"):
		return "Network Contributor on the resource group"
	case strings.HasPrefix(a, "microsoft.resources/subscriptions/resourcegroups/"):
		return "Contributor on the resource group (or on the subscription to let mixedk8s create the group)"
	}
	return "Contributor on the resource group"
}

// namespaceRE finds the resource provider MissingSubscriptionRegistration
// names: "The subscription is not registered to use namespace '<ns>'"
// (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-register-resource-provider).
var namespaceRE = regexp.MustCompile(`namespace '([^']+)'`)

func (k call) fix(ce *clouds.Error) string {
	msg := ""
	if ce.Err != nil {
		msg = ce.Err.Error()
	}
	switch ce.Kind {
	case clouds.KindCapacity:
		what := "Azure has no capacity for this VM size in the location"
		if ce.Code == "SkuNotAvailable" {
			what = "this VM size is not offered to the subscription in the location"
		}
		if k.pool != "" {
			return fmt.Sprintf("%s; choose another instance_type for pool %q, or another azure.location", what, k.pool)
		}
		return what + "; choose another instance_type or azure.location"
	case clouds.KindQuota:
		return "raise the vCPU quota of the VM family in the location (Azure portal: Subscriptions > Usage + quotas), or ask for fewer or smaller VMs"
	case clouds.KindAuth:
		switch ce.Code {
		case "SubscriptionNotFound", "InvalidSubscriptionId":
			return "set azure.subscription_id to a subscription the credentials can see (az account list)"
		case "MissingSubscriptionRegistration":
			ns := "<namespace>"
			if m := namespaceRE.FindStringSubmatch(msg); m != nil {
				ns = m[1]
			}
			return fmt.Sprintf("register the resource provider in the subscription (az provider register --namespace %s), or set azure.subscription_id to a subscription where it is registered", ns)
		}
		if m := linkedRE.FindStringSubmatch(msg); ce.Code == "LinkedAuthorizationFailed" && m != nil {
			// The caller may write the object but not join what it names:
			// the role goes on the linked resource, wherever it is. The
			// first pair is named; ARM lists them all in the error.
			action, _, _ := strings.Cut(m[1], ",")
			scope, _, _ := strings.Cut(m[2], ",")
			role, _, _ := strings.Cut(roleFor(action), " on ")
			return fmt.Sprintf("grant the credentials in use %s on %s or on its resource group (it allows %s)", role, scope, action)
		}
		if m := actionRE.FindStringSubmatch(msg); m != nil {
			return fmt.Sprintf("grant the credentials in use %s (it allows %s)", roleFor(m[1]), m[1])
		}
		return "check the credentials (az login, or AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET) and their roles: Virtual Machine Contributor and Network Contributor on the resource group, Key Vault Secrets Officer on the vault"
	case clouds.KindInvalid:
		switch ce.Code {
		case "PropertyChangeNotAllowed":
			return "a VM exists under this node's name with other settings Azure cannot change; delete the VM or revert the change"
		case "PlatformImageNotFound":
			return "set image to a publisher:offer:sku:version the location offers, or leave it empty for the default"
		}
		return "check the instance_type, image, location and CIDRs of the spec against what Azure offers in the location"
	}
	return ""
}

// isNotFound reports an absent object; a 404 SubscriptionNotFound is not
// one (the whole subscription is out of reach), so a wrong subscription
// is never read as an empty cluster.
func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && kindOfCode(re.StatusCode, re.ErrorCode, "") == clouds.KindNotFound
}
