package gcp

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/impersonate"
	"google.golang.org/api/option"
)

// Credentials. The base credentials are Config.TokenSource or, without
// it, Application Default Credentials; with Config.ImpersonateServiceAccount
// every API call is made as that service account instead, with access
// tokens the IAM Service Account Credentials API mints for the base
// credentials (google.golang.org/api/impersonate, which calls
// projects.serviceAccounts.generateAccessToken and refreshes the token
// before it expires). The base credentials need
// roles/iam.serviceAccountTokenCreator on the service account, or on the
// first of ImpersonateDelegates, each delegate on the next
// (https://cloud.google.com/iam/docs/service-account-impersonation).

// cloudPlatformScope is the scope of every token: Compute Engine and
// Secret Manager both accept it.
const cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

// iamCredentialsHost is where google.golang.org/api/impersonate sends
// generateAccessToken; the package has no endpoint option (impersonate.go,
// iamCredentailsEndpoint), so an override redirects its requests (redirect).
const iamCredentialsHost = "iamcredentials.googleapis.com"

// CredentialsError is a credential check that failed: which chain was
// tried, the step that failed and why. It holds no token.
type CredentialsError struct {
	// Chain is the credential sources tried, in order, as a sentence.
	Chain string
	// Step is what failed: "find Application Default Credentials",
	// "obtain a token from the base credentials", "impersonate <email>".
	Step string
	// Err is the cause, scrubbed of tokens.
	Err error
}

func (e *CredentialsError) Error() string {
	return fmt.Sprintf("failed to %s: %s. Tried %s", e.Step, strings.TrimRight(e.Err.Error(), ". \n"), e.Chain)
}

func (e *CredentialsError) Unwrap() error { return e.Err }

// Impersonating reports whether the failed step was the impersonation.
func (e *CredentialsError) Impersonating() bool { return strings.HasPrefix(e.Step, "impersonate ") }

// transport is the base transport of every call, token requests included:
// it trusts caBundle in addition to the system pool.
func transport(caBundle []byte) (*http.Transport, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	if len(caBundle) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caBundle) {
			return nil, errors.New("gcp: Config.CABundle holds no PEM certificate; fix: pass the CA certificate in PEM form")
		}
		base.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	return base, nil
}

// chain names the credential sources cfg uses, in order.
func (cfg Config) chain() string {
	base := "Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default credentials file, the metadata server)"
	if cfg.TokenSource != nil {
		base = cmp.Or(cfg.TokenSourceName, "the configured token source")
	}
	if cfg.ImpersonateServiceAccount == "" {
		return base
	}
	out := base + ", then impersonation of " + cfg.ImpersonateServiceAccount + " through IAM Credentials generateAccessToken at " + cfg.iamCredentialsEndpoint()
	if len(cfg.ImpersonateDelegates) > 0 {
		out += " by way of " + strings.Join(cfg.ImpersonateDelegates, ", ")
	}
	return out
}

// iamCredentialsEndpoint is the IAM Credentials base URL cfg uses.
func (cfg Config) iamCredentialsEndpoint() string {
	return cmp.Or(cfg.IAMCredentialsEndpoint, cfg.Endpoint, "https://"+iamCredentialsHost)
}

// tokenSource is cfg's credentials over base: the base token source and,
// with ImpersonateServiceAccount, the impersonated one on top. It makes no
// call: tokens are fetched when first used.
func tokenSource(ctx context.Context, cfg Config, base http.RoundTripper) (oauth2.TokenSource, error) {
	// The token sources fetch their tokens over the same transport, so the
	// CA override reaches a token endpoint behind the same proxy too.
	tctx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: base})
	ts := cfg.TokenSource
	if ts == nil {
		var err error
		ts, err = google.DefaultTokenSource(tctx, cloudPlatformScope)
		if err != nil {
			return nil, &CredentialsError{Chain: cfg.chain(), Step: "find Application Default Credentials", Err: err}
		}
	}
	if cfg.ImpersonateServiceAccount == "" {
		return ts, nil
	}
	rt := base
	if e := cfg.iamCredentialsEndpoint(); e != "https://"+iamCredentialsHost {
		u, err := url.Parse(e)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("gcp: IAM Credentials endpoint %q is not an https:// URL; fix: set it to a base URL such as https://iamcredentials.googleapis.com", e)
		}
		rt = redirect{to: u, base: base}
	}
	// WithHTTPClient is used as is (google.golang.org/api/transport/http
	// NewClient), so the client carries the base credentials itself.
	iam := &http.Client{Transport: &oauth2.Transport{Source: ts, Base: rt}}
	its, err := impersonate.CredentialsTokenSource(tctx, impersonate.CredentialsConfig{
		TargetPrincipal: cfg.ImpersonateServiceAccount,
		Delegates:       cfg.ImpersonateDelegates,
		Scopes:          []string{cloudPlatformScope},
	}, option.WithHTTPClient(iam))
	if err != nil {
		return nil, &CredentialsError{Chain: cfg.chain(), Step: "impersonate " + cfg.ImpersonateServiceAccount, Err: err}
	}
	return tokenSourceOf{its}, nil
}

// tokenSourceOf marks the errors of an impersonated token source as
// token errors, so that an API call that could not get a token is
// classified by IAM's answer rather than as a lost connection.
type tokenSourceOf struct{ ts oauth2.TokenSource }

func (t tokenSourceOf) Token() (*oauth2.Token, error) {
	tok, err := t.ts.Token()
	if err != nil {
		return nil, &tokenError{err: iamError(err), status: statusOf(err)}
	}
	return tok, nil
}

// tokenError is a failure to obtain an impersonated token; status is
// IAM's HTTP status, 0 when it did not answer.
type tokenError struct {
	err    error
	status int
}

func (e *tokenError) Error() string {
	return "failed to obtain an impersonated token: " + e.err.Error()
}
func (e *tokenError) Unwrap() error { return e.err }

// statusOf is the HTTP status in the impersonate package's "impersonate:
// status code N: ..." error, or 0.
func statusOf(err error) int {
	_, rest, ok := strings.Cut(err.Error(), "impersonate: status code ")
	if !ok {
		return 0
	}
	code, _, _ := strings.Cut(rest, ":")
	n, _ := strconv.Atoi(code)
	return n
}

// redirect sends IAM Credentials requests to another base URL (Private
// Service Connect, a proxy, the lab) and every other request unchanged.
type redirect struct {
	to   *url.URL
	base http.RoundTripper
}

func (r redirect) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != iamCredentialsHost {
		return r.base.RoundTrip(req)
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host = r.to.Scheme, r.to.Host
	out.URL.Path = strings.TrimSuffix(r.to.Path, "/") + req.URL.Path
	out.Host = ""
	return r.base.RoundTrip(out)
}

// Identity is who the configured credentials act as.
type Identity struct {
	// Principal is the impersonated service account's email, or the base
	// credentials' description when there is no impersonation.
	Principal string
}

// CheckCredentials resolves cfg's credentials once and obtains a token:
// from the base credentials, then, with ImpersonateServiceAccount, from
// IAM Credentials generateAccessToken. It is the check a provider makes
// before planning; a failure is a *CredentialsError.
func CheckCredentials(ctx context.Context, cfg Config) (Identity, error) {
	base, err := transport(cfg.CABundle)
	if err != nil {
		return Identity{}, err
	}
	chain := cfg.chain()
	tctx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: base})
	plain := cfg
	plain.ImpersonateServiceAccount, plain.ImpersonateDelegates = "", nil
	ts, err := tokenSource(tctx, plain, base)
	if err != nil {
		return Identity{}, withChain(err, chain)
	}
	tok, err := ts.Token()
	if err != nil {
		return Identity{}, &CredentialsError{Chain: chain, Step: "obtain a token from the base credentials", Err: err}
	}
	if cfg.ImpersonateServiceAccount == "" {
		return Identity{Principal: plain.chain()}, nil
	}
	// The impersonated source starts from the base token just obtained.
	cfg.TokenSource = oauth2.ReuseTokenSource(tok, ts)
	its, err := tokenSource(tctx, cfg, base)
	if err != nil {
		return Identity{}, withChain(err, chain)
	}
	if _, err := its.Token(); err != nil {
		var te *tokenError
		if errors.As(err, &te) {
			err = te.err
		}
		return Identity{}, &CredentialsError{Chain: chain, Step: "impersonate " + cfg.ImpersonateServiceAccount, Err: err}
	}
	return Identity{Principal: cfg.ImpersonateServiceAccount}, nil
}

// iamError shortens the impersonate package's "impersonate: status code
// N: <body>" to IAM's status and message (google.rpc.Status JSON).
func iamError(err error) error {
	_, body, ok := strings.Cut(err.Error(), "impersonate: status code ")
	if !ok {
		return err
	}
	code, body, _ := strings.Cut(body, ": ")
	var st struct {
		Error struct {
			Status, Message string
		}
	}
	if json.Unmarshal([]byte(body), &st) != nil || st.Error.Status == "" {
		return err
	}
	return fmt.Errorf("IAM Credentials generateAccessToken answered %s %s: %s", code, st.Error.Status, st.Error.Message)
}

// withChain puts the full chain on a *CredentialsError of a partial one.
func withChain(err error, chain string) error {
	var ce *CredentialsError
	if errors.As(err, &ce) {
		ce.Chain = chain
	}
	return err
}
