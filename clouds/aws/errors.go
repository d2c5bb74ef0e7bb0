package aws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// kindOfCode classifies an EC2 or SSM error code.
func kindOfCode(code string) clouds.Kind {
	switch code {
	case "RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled", "RequestThrottledException",
		"EC2ThrottledException", "TooManyRequestsException", "ThrottledException":
		return clouds.KindThrottled
	case "InternalError", "InternalFailure", "InternalServerError", "Unavailable", "ServiceUnavailable",
		"InsufficientAddressCapacity", "DependencyViolation", "IncorrectState", "RequestExpired":
		return clouds.KindTransient
	case "InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientCapacity", "InsufficientReservedInstanceCapacity":
		return clouds.KindCapacity
	case "UnauthorizedOperation", "AuthFailure", "AccessDenied", "AccessDeniedException", "UnrecognizedClientException",
		"InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidSignatureException", "ExpiredToken", "ExpiredTokenException",
		"MissingAuthenticationToken", "MissingAuthenticationTokenException", "OptInRequired", "Blocked":
		return clouds.KindAuth
	case "InvalidParameterValue", "InvalidParameter", "InvalidParameterCombination", "MissingParameter",
		"IdempotentParameterMismatch", "ValidationException", "Unsupported", "UnsupportedOperation",
		"InvalidAMIID.Malformed", "InvalidUserData.Malformed", "InvalidBlockDeviceMapping", "InvalidSubnet.Range",
		"InvalidVpc.Range", "InvalidSubnet.Conflict":
		return clouds.KindInvalid
	case "ParameterNotFound", "LoadBalancerNotFound", "TargetGroupNotFound", "ListenerNotFound":
		return clouds.KindNotFound
	// Elastic Load Balancing's codes (APIReference, each action's Errors).
	case "ResourceInUse":
		// A target group still referenced by a deleted load balancer's listener, for a moment.
		return clouds.KindTransient
	case "InvalidTarget", "InvalidConfigurationRequest", "InvalidScheme", "InvalidSubnet", "SubnetNotFound",
		"InvalidSecurityGroup", "ValidationError", "DuplicateLoadBalancerName", "DuplicateTargetGroupName",
		"DuplicateListener", "DuplicateTagKeys", "TargetGroupAssociationLimit", "OperationNotPermitted":
		return clouds.KindInvalid
	case "TooManyLoadBalancers", "TooManyTargetGroups", "TooManyListeners", "TooManyTargets",
		"TooManyRegistrationsForTargetId", "TooManyTags":
		return clouds.KindQuota
	}
	switch {
	case strings.HasSuffix(code, ".NotFound"):
		return clouds.KindNotFound
	case strings.HasSuffix(code, "LimitExceeded"):
		return clouds.KindQuota
	}
	return clouds.KindFatal
}

// call names one API call for error messages: the operation, the object
// and, for capacity errors, the pool whose instance type to change.
type call struct {
	op     string
	object string
	pool   string
	// fixText, when set, is the fix of an invalid request.
	fixText string
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
	var ae smithy.APIError
	var re *awshttp.ResponseError
	var ne net.Error
	switch {
	case errors.As(err, &ae):
		ce.Code = ae.ErrorCode()
		ce.Kind = kindOfCode(ce.Code)
		if ce.Kind == clouds.KindFatal && errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
			ce.Kind = clouds.KindTransient
		}
	case errors.As(err, &re) && re.HTTPStatusCode() >= 500:
		ce.Kind = clouds.KindTransient
	case errors.As(err, &ne):
		ce.Kind = clouds.KindTransient
	}
	ce.Fix = k.fix(ce)
	return ce
}

func (k call) fix(ce *clouds.Error) string {
	switch ce.Kind {
	case clouds.KindCapacity:
		if k.pool != "" {
			return fmt.Sprintf("EC2 has no capacity for this instance type in the zone; choose another instance_type or zone for pool %q", k.pool)
		}
		return "EC2 has no capacity for this instance type in the zone; choose another instance_type or zone"
	case clouds.KindQuota:
		if lbOps[k.op] {
			return fmt.Sprintf("raise the Elastic Load Balancing quota behind %s in Service Quotas for the region, or delete unused load balancers", ce.Code)
		}
		return fmt.Sprintf("raise the %s quota in Service Quotas for the region, or ask for fewer or smaller instances", ce.Code)
	case clouds.KindAuth:
		service := "ec2"
		switch {
		case strings.Contains(k.op, "Parameter"):
			service = "ssm"
		case lbOps[k.op]:
			service = "elasticloadbalancing"
		}
		return fmt.Sprintf("allow %s:%s for the credentials in use (IAM policy), and check that they are valid for the region", service, k.op)
	case clouds.KindInvalid:
		if k.fixText != "" {
			return k.fixText
		}
		if lbOps[k.op] {
			return "check the cluster's network and API access settings against what Elastic Load Balancing allows"
		}
		if ce.Code == "IdempotentParameterMismatch" {
			return "an instance was launched for this node with other settings; delete it or revert the change"
		}
		return "check the instance_type, image, zones and CIDRs of the spec against what EC2 offers in the region"
	}
	return ""
}
