package gcp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	gax "github.com/googleapis/gax-go/v2"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Compute error reasons and codes. Synchronous errors carry a reason in
// error.errors[].reason (googleapi.ErrorItem); a failed operation carries
// a code in error.errors[].code (computepb.Errors).
const (
	codeNotFound      = "notFound"
	codeAlreadyExists = "alreadyExists"
	// Stockouts: in a DONE operation (gh:CCExtractor/sample-platform#901),
	// or synchronous with details (gh:kubernetes/k8s.io#9834).
	codeStockout            = "ZONE_RESOURCE_POOL_EXHAUSTED"
	codeStockoutWithDetails = "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"
)

// kindOfCode classifies a Compute reason, an operation error code or a
// Secret Manager status.
func kindOfCode(code string) clouds.Kind {
	switch code {
	case "rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED":
		return clouds.KindThrottled
	case "backendError", "internalError", "INTERNAL_ERROR", "UNAVAILABLE", "resourceNotReady", "RESOURCE_NOT_READY", "resourceInUseByAnotherResource", "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE":
		return clouds.KindTransient
	case codeStockout, codeStockoutWithDetails, "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS_AND_ALTERNATIVES", "resourcePoolExhausted":
		return clouds.KindCapacity
	case "quotaExceeded", "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED":
		return clouds.KindQuota
	case "forbidden", "accessNotConfigured", "insufficientPermissions", "PERMISSION_DENIED", "IAM_PERMISSION_DENIED", "authError", "UNAUTHENTICATED":
		return clouds.KindAuth
	case "invalid", "badRequest", "required", "invalidParameter", "conditionNotMet", "INVALID_ARGUMENT", "INVALID_FIELD_VALUE", "UNSUPPORTED_OPERATION":
		return clouds.KindInvalid
	case codeNotFound, "NOT_FOUND", "RESOURCE_NOT_FOUND":
		return clouds.KindNotFound
	}
	return clouds.KindFatal
}

// kindOfStatus is the fallback when the reply names no known reason.
func kindOfStatus(status int) clouds.Kind {
	switch {
	case status == http.StatusTooManyRequests:
		return clouds.KindThrottled
	case status >= 500:
		return clouds.KindTransient
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return clouds.KindAuth
	case status == http.StatusNotFound:
		return clouds.KindNotFound
	case status == http.StatusBadRequest:
		return clouds.KindInvalid
	}
	return clouds.KindFatal
}

// permissionRE finds the IAM permission a 403 names. Compute says
// "Required 'compute.instances.create' permission for '...'"; Secret
// Manager says "Permission 'secretmanager.versions.access' denied for ...".
var permissionRE = regexp.MustCompile(`(?:Required '([a-zA-Z.]+)' permission|Permission '([a-zA-Z.]+)' denied)`)

// call names one API call for error messages: the operation, the object
// and, for capacity errors, the pool whose machine type or zone to change.
type call struct {
	op     string
	object string
	pool   string
	zone   string
	// fixText, when set, is the fix of an invalid or not-found answer.
	fixText string
}

// classify turns a client error into a *clouds.Error; context errors pass
// through unchanged so that cancellation stays cancellation.
func (k call) classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	ce := &clouds.Error{Op: k.op, Object: k.object, Err: err, Kind: clouds.KindFatal}
	ce.Kind, ce.Code = kindOfError(err)
	if ce.Kind == clouds.KindAuth {
		if m := permissionRE.FindStringSubmatch(err.Error()); m != nil {
			ce.Code = cmp.Or(m[1], m[2])
		}
	}
	ce.Fix = k.fix(ce)
	return ce
}

// kindOfError classifies an error from the REST clients: a googleapi.Error
// by its reasons, else its status, a network error as transient.
func kindOfError(err error) (clouds.Kind, string) {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		for _, it := range ge.Errors {
			if k := kindOfCode(it.Reason); k != clouds.KindFatal {
				return refineQuota(k, ge.Code, it.Reason, ge.Message), it.Reason
			}
		}
		var ae *apierror.APIError
		if errors.As(err, &ae) {
			if r := ae.Reason(); r != "" {
				if k := kindOfCode(r); k != clouds.KindFatal {
					return refineQuota(k, ge.Code, r, ge.Message), r
				}
			}
		}
		if strings.Contains(ge.Message, codeStockout) {
			return clouds.KindCapacity, codeStockout
		}
		code := http.StatusText(ge.Code)
		if len(ge.Errors) > 0 {
			code = ge.Errors[0].Reason
		}
		return kindOfStatus(ge.Code), code
	}
	var oe *opError
	if errors.As(err, &oe) {
		return oe.kind, oe.code
	}
	// IAM refused to mint the impersonated token: the call never reached
	// Compute; a refusal is not retried, IAM's own outage is.
	var te *tokenError
	if errors.As(err, &te) && te.status != 0 {
		if te.status >= 500 || te.status == http.StatusTooManyRequests {
			return clouds.KindTransient, ""
		}
		return clouds.KindAuth, "iam.serviceAccounts.getAccessToken"
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "server closed") ||
		strings.Contains(err.Error(), "stream error") || strings.Contains(err.Error(), "INTERNAL_ERROR; received from peer") {
		// A lost reply: the connection or, over HTTP/2, the stream ended before an answer.
		return clouds.KindTransient, ""
	}
	return clouds.KindFatal, ""
}

// refineQuota: a 429 RESOURCE_EXHAUSTED on a per-minute API quota is rate
// limiting and retried; a resource quota (CPUS, INSTANCES) is not.
// https://cloud.google.com/docs/quota_detail/troubleshoot
func refineQuota(k clouds.Kind, status int, reason, msg string) clouds.Kind {
	if k == clouds.KindQuota && (strings.Contains(msg, "per minute") || strings.Contains(msg, "per second") || status == http.StatusTooManyRequests && reason == "RESOURCE_EXHAUSTED" && strings.Contains(msg, "requests")) {
		return clouds.KindThrottled
	}
	return k
}

func (k call) fix(ce *clouds.Error) string {
	if k.fixText != "" && (ce.Kind == clouds.KindInvalid || ce.Kind == clouds.KindNotFound) {
		return k.fixText
	}
	switch ce.Kind {
	case clouds.KindCapacity:
		where := "zone"
		if k.zone != "" {
			where = "zone " + k.zone
		}
		if k.pool != "" {
			return fmt.Sprintf("Compute Engine has no capacity for this machine type in %s; choose another instance_type for pool %q, or other zones", where, k.pool)
		}
		return fmt.Sprintf("Compute Engine has no capacity for this machine type in %s; choose another instance_type or other zones", where)
	case clouds.KindQuota:
		return "raise the quota named above in IAM & Admin > Quotas for the project and region, or ask for fewer or smaller instances"
	case clouds.KindAuth:
		if ce.Code == "iam.serviceAccounts.getAccessToken" {
			return "grant the base credentials roles/iam.serviceAccountTokenCreator on the impersonated service account (gcp.impersonate_service_account), or along its delegates, and check that the account exists"
		}
		if strings.Contains(ce.Code, ".") {
			return fmt.Sprintf("grant %s to the credentials in use (a role that holds it, e.g. %s), and check the project ID", ce.Code, roleFor(ce.Code))
		}
		return "check that the credentials are valid (gcloud auth application-default login) and hold the permissions listed in docs/architecture.md for the project"
	case clouds.KindInvalid:
		return "check the instance_type, image, zones and CIDRs of the spec against what Compute Engine offers in the region"
	case clouds.KindNotFound:
		if strings.Contains(ce.Err.Error(), "project") && strings.Contains(k.object, "network") {
			return "check the project ID: it must name an existing project with the Compute Engine API enabled"
		}
	}
	return ""
}

// roleFor names a predefined role that holds a permission
// (https://cloud.google.com/compute/docs/access/iam#predefined_roles).
func roleFor(permission string) string {
	for _, p := range []string{"compute.addresses.", "compute.forwardingRules.", "compute.regionBackendServices.", "compute.regionHealthChecks.", "compute.instanceGroups."} {
		if strings.HasPrefix(permission, p) {
			return "roles/compute.loadBalancerAdmin"
		}
	}
	return "roles/compute.instanceAdmin.v1 or roles/secretmanager.admin"
}

// opError is a DONE operation that carries errors.
type opError struct {
	kind    clouds.Kind
	code    string
	message string
}

func (e *opError) Error() string { return fmt.Sprintf("operation failed: %s: %s", e.code, e.message) }

// opFailure reads a DONE operation's error field: the first classified
// code wins, the messages are all kept.
func opFailure(op *computepb.Operation) error {
	errs := op.GetError().GetErrors()
	if len(errs) == 0 {
		if s := op.GetHttpErrorStatusCode(); s != 0 && (s < 200 || s > 299) {
			return &opError{kind: kindOfStatus(int(s)), code: http.StatusText(int(s)), message: op.GetHttpErrorMessage()}
		}
		return nil
	}
	out := &opError{kind: clouds.KindFatal}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.GetMessage())
		if out.code == "" || out.kind == clouds.KindFatal {
			if k := kindOfCode(e.GetCode()); k != clouds.KindFatal || out.code == "" {
				out.kind, out.code = k, e.GetCode()
			}
		}
	}
	out.message = strings.Join(msgs, "; ")
	return out
}

// retryer retries what classify calls throttled or transient, with
// exponential backoff, up to MaxAttempts. Inserts and deletes carry a
// requestId, so retrying them is safe.
type retryer struct {
	bo   gax.Backoff
	left int
}

func (r *retryer) Retry(err error) (time.Duration, bool) {
	if r.left <= 1 {
		return 0, false
	}
	if k, _ := kindOfError(err); !k.Retryable() {
		return 0, false
	}
	r.left--
	return r.bo.Pause(), true
}

// retry is the call option every API call gets.
func (c *Cloud) retry() gax.CallOption {
	return gax.WithRetry(func() gax.Retryer {
		return &retryer{bo: gax.Backoff{Initial: c.cfg.InitialBackoff, Max: c.cfg.MaxBackoff, Multiplier: 2}, left: c.cfg.MaxAttempts}
	})
}

// isCode reports whether err is a Compute reply with this reason, or the
// HTTP status that reason always comes with.
func isCode(err error, reason string) bool {
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return false
	}
	for _, it := range ge.Errors {
		if it.Reason == reason {
			return true
		}
	}
	switch reason {
	case codeNotFound:
		return ge.Code == http.StatusNotFound
	case codeAlreadyExists:
		return ge.Code == http.StatusConflict
	}
	return false
}
