package gce

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/iam/credentials/apiv1/credentialspb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// IAM Service Account Credentials: generateAccessToken
// (https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken),
// the call service-account impersonation makes. Every caller is a
// principal: Options.Token is Options.Principal's token, and each token
// the server issues is its service account's until it expires. Each call
// is recorded under the principal that made it (CallsBy).

// Scopes an issued token may carry that cover Compute Engine and Secret
// Manager: cloud-platform covers both, compute Compute only
// (https://cloud.google.com/compute/docs/reference/rest/v1/instances/insert#authorization-scopes,
// https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/create#authorization-scopes).
const (
	ScopeCloudPlatform = "https://www.googleapis.com/auth/cloud-platform"
	scopeCompute       = "https://www.googleapis.com/auth/compute"
)

// maxTokenLifetime is generateAccessToken's default maximum lifetime:
// "By default, the maximum allowed value is 1 hour"; up to 12 hours needs
// an organization policy (constraints/iam.allowServiceAccountCredentialLifetimeExtension)
// the emulator does not model, so it refuses anything above 1 hour
// (generateAccessToken request body, lifetime).
const maxTokenLifetime = time.Hour

// issued is an access token the server generated for a service account.
type issued struct {
	account string
	scopes  []string
	expiry  time.Time
}

// iamState is the emulated IAM: the service accounts, who may mint their
// tokens, and the tokens minted.
type iamState struct {
	accounts map[string]bool            // email
	creators map[string]map[string]bool // target email -> members holding roles/iam.serviceAccountTokenCreator on it
	tokens   map[string]issued
	byCaller map[string]map[string]int // principal -> method -> calls
}

func newIAMState() iamState {
	return iamState{accounts: map[string]bool{}, creators: map[string]map[string]bool{}, tokens: map[string]issued{}, byCaller: map[string]map[string]int{}}
}

// serviceAccountEmailRE is a service account's email as IAM makes them:
// <id>@<project>.iam.gserviceaccount.com, the id 6-30 characters
// (https://cloud.google.com/iam/docs/service-accounts-create#creating).
var serviceAccountEmailRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{4,28}[a-z0-9])@[a-z][-a-z0-9]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com$`)

// OwnerServiceAccount creates, as the project's owner would, the service
// account id@<project>.iam.gserviceaccount.com and returns its email.
func (s *Server) OwnerServiceAccount(id string) (string, error) {
	email := id + "@" + s.opts.Project + ".iam.gserviceaccount.com"
	if !serviceAccountEmailRE.MatchString(email) {
		return "", fmt.Errorf("service account ID %q: want 6-30 lowercase letters, digits and dashes, starting with a letter", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.iam.accounts[email] = true
	return email, nil
}

// GrantTokenCreator grants, as target's owner would, member (an IAM
// member: "user:alice@example.com" or "serviceAccount:<email>")
// roles/iam.serviceAccountTokenCreator on the service account target,
// which lets member mint target's access tokens
// (https://cloud.google.com/iam/docs/service-account-permissions#token-creator-role).
func (s *Server) GrantTokenCreator(member, target string) error {
	if !strings.HasPrefix(member, "user:") && !strings.HasPrefix(member, "serviceAccount:") {
		return fmt.Errorf("member %q: want user:<email> or serviceAccount:<email>", member)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.st.iam.accounts[target] {
		return fmt.Errorf("no service account %q; create it with OwnerServiceAccount", target)
	}
	if s.st.iam.creators[target] == nil {
		s.st.iam.creators[target] = map[string]bool{}
	}
	s.st.iam.creators[target][member] = true
	return nil
}

// Principal is the IAM member Options.Token stands for.
func (s *Server) Principal() string { return s.opts.Principal }

// CallsBy returns, per principal ("user:..." or "serviceAccount:..."),
// how many requests of each method it made, failed ones included.
func (s *Server) CallsBy() map[string]map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]int{}
	for p, m := range s.st.iam.byCaller {
		out[p] = maps.Clone(m)
	}
	return out
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// authenticate finds the principal of a request's OAuth bearer token: a
// token the server issued, until it expires, is its service account's;
// Options.Token is Options.Principal's, and without Options.Token any
// other token is too. Anything else is Compute's 401 authError.
// A token used on an API its scopes do not cover is 403 "Request had
// insufficient authentication scopes." with an ErrorInfo
// ACCESS_TOKEN_SCOPE_INSUFFICIENT (gh:fluent/fluent-bit#5410), reason
// insufficientPermissions in Compute's errors list.
func (s *Server) authenticate(r *http.Request, c *call) (string, *Error) {
	unauthenticated := &Error{Status: http.StatusUnauthorized, Reason: "authError",
		Message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	t, minted := s.st.iam.tokens[tok]
	s.mu.Unlock()
	switch {
	case ok && minted:
		// An access token is refused once its expireTime has passed
		// (GenerateAccessTokenResponse.expireTime: "Token expiration time").
		if !s.now().Before(t.expiry) {
			return "", unauthenticated
		}
		if !slices.Contains(t.scopes, ScopeCloudPlatform) && (c == nil || c.secrets || !slices.Contains(t.scopes, scopeCompute)) {
			reason := "insufficientPermissions"
			if c == nil || c.secrets {
				reason = "PERMISSION_DENIED"
			}
			return "", &Error{Status: http.StatusForbidden, Reason: reason, Message: "Request had insufficient authentication scopes.",
				Details: []map[string]any{{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "domain": "googleapis.com"}}}
		}
		return "serviceAccount:" + t.account, nil
	case s.opts.Token == "" || (ok && tok == s.opts.Token):
		return s.opts.Principal, nil
	}
	return "", unauthenticated
}

// parseIAM parses /v1/projects/{project}/serviceAccounts/{account}:generateAccessToken.
func parseIAM(verb, rest string) (*call, *Error) {
	project, account, _ := strings.Cut(rest, "/serviceAccounts/")
	account, ok := strings.CutSuffix(account, ":generateAccessToken")
	if !ok || verb != http.MethodPost || strings.Contains(account, "/") {
		return nil, &Error{Status: http.StatusNotFound, Reason: "NOT_FOUND", Message: "The requested URL was not found on this server."}
	}
	return &call{iam: true, secrets: true, project: project, name: account, method: "serviceAccounts.generateAccessToken",
		permission: "iam.serviceAccounts.getAccessToken", resource: "projects/" + project + "/serviceAccounts/" + account,
		handle: (*Server).generateAccessToken}, nil
}

// invalidArgument is a 400 INVALID_ARGUMENT. The rules it enforces are the
// documented ones cited beside each use; the messages are the emulator's
// wording, not IAM's.
func invalidArgument(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Reason: "INVALID_ARGUMENT", Message: msg}
}

// accountOf is the email of projects/-/serviceAccounts/{email}: "The -
// wildcard character is required; replacing it with a project ID is
// invalid" (generateAccessToken, path parameter name and request field
// delegates). The emulator knows accounts by email only, not unique ID.
func accountOf(name string) (string, *Error) {
	rest, ok := strings.CutPrefix(name, "projects/-/serviceAccounts/")
	if !ok || rest == "" || strings.Contains(rest, "/") {
		return "", invalidArgument(fmt.Sprintf("Invalid service account name %q: want projects/-/serviceAccounts/{ACCOUNT_EMAIL_OR_UNIQUEID}.", name))
	}
	return rest, nil
}

func (s *Server) generateAccessToken(r *http.Request, c *call) (proto.Message, *Error, func()) {
	target, e := accountOf("projects/" + c.project + "/serviceAccounts/" + c.name)
	if e != nil {
		return nil, e, nil
	}
	req := &credentialspb.GenerateAccessTokenRequest{}
	if e := readProto(r, req); e != nil {
		return nil, invalidArgument(e.Message), nil
	}
	// scope: "Required ... At least one value required."
	if len(req.GetScope()) == 0 {
		return nil, invalidArgument("Scope required."), nil
	}
	// lifetime: default one hour, at most one hour without the
	// lifetime-extension org policy.
	lifetime := maxTokenLifetime
	if req.Lifetime != nil {
		lifetime = req.GetLifetime().AsDuration()
		if lifetime <= 0 {
			return nil, invalidArgument(fmt.Sprintf("Invalid value at 'lifetime': %s", lifetime)), nil
		}
		if lifetime > maxTokenLifetime {
			return nil, invalidArgument(fmt.Sprintf("The lifetime %.0fs exceeds the maximum of 3600s for service account %s; "+
				"see https://cloud.google.com/iam/help/credentials/lifetime to allow up to 43200s.", lifetime.Seconds(), target)), nil
		}
	}
	chain := []string{}
	for _, d := range req.GetDelegates() {
		email, e := accountOf(d)
		if e != nil {
			return nil, e, nil
		}
		chain = append(chain, email)
	}
	chain = append(chain, target)
	// Each account of the chain must exist: an unknown one is 404 NOT_FOUND
	// as IAM words it for an email it cannot resolve.
	for _, a := range chain {
		if !s.st.iam.accounts[a] {
			return nil, &Error{Status: http.StatusNotFound, Reason: "NOT_FOUND", Message: "Not found; Gaia id not found for email " + a}, nil
		}
	}
	// The caller holds roles/iam.serviceAccountTokenCreator on the first
	// account of the chain, each delegate on the next, the last on the
	// target (generateAccessToken, request field delegates); a missing
	// link is 403 PERMISSION_DENIED with an IAM ErrorInfo, worded as IAM
	// words it (gh:google-github-actions/auth#340).
	member := c.principal
	for _, a := range chain {
		if !s.st.iam.creators[a][member] {
			return nil, denied("iam.serviceAccounts.getAccessToken", "projects/-/serviceAccounts/"+a), nil
		}
		member = "serviceAccount:" + a
	}
	raw := make([]byte, 32)
	rand.Read(raw) // crypto/rand.Read never fails (Go 1.24+)
	tok := "ya29.lab." + base64.RawURLEncoding.EncodeToString(raw)
	expiry := s.now().Add(lifetime).UTC().Truncate(time.Second)
	s.st.iam.tokens[tok] = issued{account: target, scopes: slices.Clone(req.GetScope()), expiry: expiry}
	return &credentialspb.GenerateAccessTokenResponse{AccessToken: tok, ExpireTime: timestamppb.New(expiry)}, nil, nil
}
