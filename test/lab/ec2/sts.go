package ec2

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The lab's STS: AssumeRole and GetCallerIdentity over the awsquery
// protocol (Version 2011-06-15), at the same URL as EC2, ELBv2 and SSM.
// Roles are made by the test (CreateRole, as IAM's CreateRole with a trust
// policy would); AssumeRole hands out temporary credentials that every
// emulated service accepts until they expire, and each call is recorded
// under the principal that made it (CallsBy).

// STSAPIVersion is the STS Query API version the emulator answers.
const STSAPIVersion = "2011-06-15"

// STSNamespace is the XML namespace of every STS reply.
const STSNamespace = "https://sts.amazonaws.com/doc/" + STSAPIVersion + "/"

// UserARN is the IAM user the static credentials stand for.
const UserARN = "arn:aws:iam::" + AccountID + ":user/lab"

// Role is an IAM role in the emulator's account that the lab user may assume.
type Role struct {
	// Name of the role; its ARN is arn:aws:iam::<AccountID>:role/<Name>.
	Name string
	// ExternalID, when set, is the trust policy's sts:ExternalId condition:
	// AssumeRole without it, or with another value, is denied.
	ExternalID string
	// MaxSessionDuration is the role's maximum session; default 1 hour,
	// IAM allows 1 to 12 hours
	// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
	MaxSessionDuration time.Duration
}

// session is one set of temporary credentials AssumeRole issued.
type session struct {
	secret, token string
	arn           string // arn:aws:sts::<account>:assumed-role/<role>/<session>
	userID        string // AROA...:<session>
	expires       time.Time
}

// roleNameRE is an IAM role name with its path
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_Role.html: RoleName [\w+=,.@-]{1,64}, Path (/[\x21-\x7E]*/)?).
var roleNameRE = regexp.MustCompile(`^(/[!-~]*/)?[\w+=,.@-]{1,64}$`)

// CreateRole adds a role the lab user may assume and returns its ARN.
func (s *Server) CreateRole(r Role) (string, error) {
	if !roleNameRE.MatchString(r.Name) {
		return "", fmt.Errorf("create role %q: not an IAM role name ([\\w+=,.@-]{1,64}, optionally under a /path/)", r.Name)
	}
	if r.MaxSessionDuration == 0 {
		r.MaxSessionDuration = time.Hour
	}
	if r.MaxSessionDuration < time.Hour || r.MaxSessionDuration > 12*time.Hour {
		return "", fmt.Errorf("create role %q: MaxSessionDuration %s is outside IAM's 1h to 12h", r.Name, r.MaxSessionDuration)
	}
	arn := "arn:aws:iam::" + AccountID + ":role/" + strings.TrimPrefix(r.Name, "/")
	s.stsMu.Lock()
	defer s.stsMu.Unlock()
	if s.roles == nil {
		s.roles = map[string]Role{}
	}
	s.roles[arn] = r
	return arn, nil
}

// ExpireSessions makes every temporary credential issued so far expired,
// as if their duration had passed.
func (s *Server) ExpireSessions() {
	s.stsMu.Lock()
	defer s.stsMu.Unlock()
	past := s.clock().Add(-time.Second)
	for k, sess := range s.sessions {
		sess.expires = past
		s.sessions[k] = sess
	}
}

// CallsBy returns, per principal ARN (UserARN, or an assumed-role ARN),
// how many authenticated requests of each action it made.
func (s *Server) CallsBy() map[string]map[string]int {
	s.stsMu.Lock()
	defer s.stsMu.Unlock()
	out := make(map[string]map[string]int, len(s.callers))
	for p, calls := range s.callers {
		out[p] = maps.Clone(calls)
	}
	return out
}

func (s *Server) noteCaller(principal, action string) {
	s.stsMu.Lock()
	defer s.stsMu.Unlock()
	if s.callers == nil {
		s.callers = map[string]map[string]int{}
	}
	if s.callers[principal] == nil {
		s.callers[principal] = map[string]int{}
	}
	s.callers[principal][action]++
}

func (s *Server) session(accessKeyID string) (session, bool) {
	s.stsMu.Lock()
	defer s.stsMu.Unlock()
	sess, ok := s.sessions[accessKeyID]
	return sess, ok
}

func (s *Server) clock() time.Time { return time.Now() }

// stsActions are the STS actions the emulator answers.
var stsActions = map[string]bool{"AssumeRole": true, "GetCallerIdentity": true}

func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, body []byte, reqID, action string, params url.Values) {
	out, apiErr := s.handleSTS(r, body, action, params)
	if apiErr != nil {
		s.logf("sts %s -> %d %s", action, apiErr.Status, apiErr.Code)
		writeQueryError(w, STSNamespace, reqID, apiErr)
		return
	}
	s.logf("sts %s -> 200", action)
	writeQueryReply(w, STSNamespace, action, reqID, out)
}

func (s *Server) handleSTS(r *http.Request, body []byte, action string, params url.Values) (any, *Error) {
	if e := s.authenticate(r, body, "sts", action); e != nil {
		return nil, e
	}
	if !stsActions[action] {
		return nil, errf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", action, STSAPIVersion)
	}
	if e := s.faultFor(r.Context(), action, params); e != nil {
		return nil, e
	}
	caller := s.callerOf(r)
	if action == "GetCallerIdentity" {
		return s.getCallerIdentity(caller), nil
	}
	return s.assumeRole(caller, params)
}

// callerOf is the principal whose key signed r (authenticate has checked it).
func (s *Server) callerOf(r *http.Request) session {
	_, rest, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	key, _, _ := strings.Cut(rest, "/")
	if sess, ok := s.session(key); ok {
		return sess
	}
	return session{arn: UserARN, userID: "AIDALABUSER0000000000"}
}

type callerIdentity struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

// getCallerIdentity answers who signed the request
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html:
// an IAM user's ARN and AIDA unique ID, or an assumed role's
// arn:aws:sts::<account>:assumed-role/<role>/<session> and AROA...:<session>).
func (s *Server) getCallerIdentity(caller session) callerIdentity {
	return callerIdentity{Arn: caller.arn, UserID: caller.userID, Account: AccountID}
}

type assumeRoleResult struct {
	Credentials struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		SessionToken    string `xml:"SessionToken"`
		Expiration      string `xml:"Expiration"`
	} `xml:"Credentials"`
	AssumedRoleUser struct {
		Arn           string `xml:"Arn"`
		AssumedRoleID string `xml:"AssumedRoleId"`
	} `xml:"AssumedRoleUser"`
	PackedPolicySize int `xml:"PackedPolicySize"`
}

// Each rule of AssumeRole below is from the API reference,
// https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html,
// unless another source is named beside it.
var (
	// RoleSessionName: length 2-64, pattern [\w+=,.@-]*.
	sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	// ExternalId: length 2-1224, pattern [\w+=,.@:\/-]*.
	externalIDRE = regexp.MustCompile(`^[\w+=,.@:/-]*$`)
)

// stsValidation is STS's ValidationError (400) in the service framework's
// words for a parameter that fails its constraint
// (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html).
func stsValidation(value, field, constraint string) *Error {
	return errf(http.StatusBadRequest, "ValidationError", "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, field, constraint)
}

func (s *Server) assumeRole(caller session, p url.Values) (any, *Error) {
	roleARN, name, extID := p.Get("RoleArn"), p.Get("RoleSessionName"), p.Get("ExternalId")
	if roleARN == "" {
		return nil, missingParam("RoleArn")
	}
	if name == "" {
		return nil, missingParam("RoleSessionName")
	}
	// RoleArn: length 20-2048.
	if len(roleARN) < 20 || len(roleARN) > 2048 {
		return nil, stsValidation(roleARN, "roleArn", "Member must have length between 20 and 2048")
	}
	// Something that is not an ARN at all is refused as invalid
	// (physera/onelogin-aws-cli#12: "ValidationError ... Request ARN is
	// invalid"); an ARN-shaped value that names no role the caller may
	// assume is denied like any other (99designs/aws-vault#668: a
	// mistyped role ARN answers AccessDenied).
	if !strings.HasPrefix(roleARN, "arn:") || strings.Count(roleARN, ":") < 5 {
		return nil, errf(http.StatusBadRequest, "ValidationError", "Request ARN is invalid")
	}
	if !sessionNameRE.MatchString(name) {
		return nil, stsValidation(name, "roleSessionName", `Member must satisfy regular expression pattern: [\w+=,.@-]*`)
	}
	if extID != "" && (len(extID) < 2 || len(extID) > 1224) {
		return nil, stsValidation(extID, "externalId", "Member must have length between 2 and 1224")
	}
	if !externalIDRE.MatchString(extID) {
		return nil, stsValidation(extID, "externalId", `Member must satisfy regular expression pattern: [\w+=,.@:\/-]*`)
	}
	duration := time.Hour // DurationSeconds defaults to one hour.
	if v := p.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, stsValidation(v, "durationSeconds", "Member must be a number")
		}
		// DurationSeconds: minimum 900, maximum 43200.
		if n < 900 {
			return nil, stsValidation(v, "durationSeconds", "Member must have value greater than or equal to 900")
		}
		if n > 43200 {
			return nil, stsValidation(v, "durationSeconds", "Member must have value less than or equal to 43200")
		}
		duration = time.Duration(n) * time.Second
	}
	denied := errf(http.StatusForbidden, "AccessDenied", "User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller.arn, roleARN)
	s.stsMu.Lock()
	role, ok := s.roles[roleARN]
	s.stsMu.Unlock()
	if !ok {
		return nil, denied
	}
	// A trust policy with "Condition": {"StringEquals": {"sts:ExternalId": ...}}
	// denies a request without that external ID, or with another one
	// (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_common-scenarios_third-party.html,
	// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_externalid).
	if role.ExternalID != "" && extID != role.ExternalID {
		return nil, denied
	}
	// Role chaining (a role session assuming a role) is limited to one hour
	// (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_terms-and-concepts.html#iam-term-role-chaining).
	if strings.Contains(caller.arn, ":assumed-role/") && duration > time.Hour {
		return nil, errf(http.StatusBadRequest, "ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}
	// "If you specify a value higher than this setting [the role's maximum
	// session duration] ..., the operation fails."
	if duration > role.MaxSessionDuration {
		return nil, errf(http.StatusBadRequest, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	// Temporary credentials: an ASIA access key ID, an AROA role ID
	// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids).
	roleID := "AROA" + strings.ToUpper(randomID(8))
	sess := session{
		secret:  randomID(20),
		token:   "FwoGZXIvYXdzE" + randomID(48),
		arn:     "arn:aws:sts::" + AccountID + ":assumed-role/" + role.Name[strings.LastIndex(role.Name, "/")+1:] + "/" + name,
		userID:  roleID + ":" + name,
		expires: s.clock().Add(duration),
	}
	key := "ASIA" + strings.ToUpper(randomID(8))
	s.stsMu.Lock()
	if s.sessions == nil {
		s.sessions = map[string]session{}
	}
	s.sessions[key] = sess
	s.stsMu.Unlock()
	var out assumeRoleResult
	out.Credentials.AccessKeyID = key
	out.Credentials.SecretAccessKey = sess.secret
	out.Credentials.SessionToken = sess.token
	out.Credentials.Expiration = sess.expires.UTC().Format(time.RFC3339)
	out.AssumedRoleUser.Arn = sess.arn
	out.AssumedRoleUser.AssumedRoleID = sess.userID
	return out, nil
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n*2]
}
