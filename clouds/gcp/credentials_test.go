package gcp_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/gcp"
	"github.com/mixedk8s/mixedk8s/test/lab/gce"
)

// With ImpersonateServiceAccount the cloud mints the service account's
// tokens with the base credentials, through the emulator's IAM
// Credentials at Endpoint, and every mutating call is the service
// account's.
func TestImpersonation(t *testing.T) {
	ctx := context.Background()
	const deployer = "deployer@mixedk8s-lab.iam.gserviceaccount.com"
	e := newEnv(t, func(c *gcp.Config) { c.ImpersonateServiceAccount = deployer })
	if _, err := e.srv.OwnerServiceAccount("deployer"); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.GrantTokenCreator(e.srv.Principal(), deployer); err != nil {
		t.Fatal(err)
	}
	cfg := gcp.Config{Project: e.srv.Project(), Region: e.srv.Region(), Endpoint: e.srv.URL(), CABundle: e.srv.CACertPEM(),
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), ImpersonateServiceAccount: deployer}
	id, err := gcp.CheckCredentials(ctx, cfg)
	if err != nil || id.Principal != deployer {
		t.Fatalf("CheckCredentials = %+v, %v; want %s", id, err, deployer)
	}
	// Through a delegate, with IAM Credentials at its own endpoint (the
	// Compute endpoint here leads nowhere).
	relay, err := e.srv.OwnerServiceAccount("relay-sa")
	if err != nil {
		t.Fatal(err)
	}
	delegated := cfg
	delegated.Endpoint, delegated.IAMCredentialsEndpoint, delegated.ImpersonateDelegates = "https://127.0.0.1:1", e.srv.URL(), []string{relay}
	if _, err := gcp.CheckCredentials(ctx, delegated); err == nil || !strings.Contains(err.Error(), "by way of "+relay) {
		t.Fatalf("CheckCredentials through a delegate without its grants = %v, want a refusal naming the delegate", err)
	}
	if err := e.srv.GrantTokenCreator(e.srv.Principal(), relay); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.GrantTokenCreator("serviceAccount:"+relay, deployer); err != nil {
		t.Fatal(err)
	}
	if id, err := gcp.CheckCredentials(ctx, delegated); err != nil || id.Principal != deployer {
		t.Fatalf("CheckCredentials through a granted delegate = %+v, %v; want %s", id, err, deployer)
	}
	e.srv.ResetCalls()
	if _, err := e.cloud.EnsureNetwork(ctx, netReq("demo")); err != nil {
		t.Fatal(err)
	}
	by := e.srv.CallsBy()
	mutating := 0
	for principal, methods := range by {
		for m, n := range methods {
			if !gce.Mutating(m) {
				continue
			}
			mutating += n
			if principal != "serviceAccount:"+deployer {
				t.Errorf("%d %s calls by %s, want every mutating call by the impersonated account", n, m, principal)
			}
		}
	}
	if mutating == 0 {
		t.Fatalf("no mutating call recorded: %v", by)
	}
	// The base credentials only minted the token, once.
	if got := by[e.srv.Principal()]; len(got) != 1 || got["serviceAccounts.generateAccessToken"] != 1 {
		t.Fatalf("calls by the base credentials = %v, want one generateAccessToken", got)
	}
}

// A service account that does not exist, or that the base credentials may
// not impersonate, fails the check at the impersonation step, naming the
// chain, with IAM's status and without a token in the message.
func TestCheckCredentialsRefused(t *testing.T) {
	ctx := context.Background()
	srv, err := gce.New(gce.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	locked, err := srv.OwnerServiceAccount("locked-sa")
	if err != nil {
		t.Fatal(err)
	}
	for account, want := range map[string]string{
		"nobody@mixedk8s-lab.iam.gserviceaccount.com": "NOT_FOUND",
		locked: "iam.serviceAccounts.getAccessToken",
	} {
		cfg := gcp.Config{Endpoint: srv.URL(), CABundle: srv.CACertPEM(), ImpersonateServiceAccount: account,
			TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), TokenSourceName: "the test's token"}
		_, err := gcp.CheckCredentials(ctx, cfg)
		var ce *gcp.CredentialsError
		if !errors.As(err, &ce) || !ce.Impersonating() {
			t.Fatalf("CheckCredentials(%s) = %v, want a *CredentialsError at the impersonation step", account, err)
		}
		msg := err.Error()
		for _, w := range []string{want, "impersonate " + account, "Tried the test's token, then impersonation of " + account, srv.URL()} {
			if !strings.Contains(msg, w) {
				t.Errorf("CheckCredentials(%s) = %q, want it to say %q", account, msg, w)
			}
		}
		if strings.Contains(msg, token) {
			t.Errorf("CheckCredentials(%s) error shows the base token: %q", account, msg)
		}
	}
	// A refused base token fails at the impersonation call too: IAM is
	// the first to see it.
	cfg := gcp.Config{Endpoint: srv.URL(), CABundle: srv.CACertPEM(), ImpersonateServiceAccount: locked,
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "wrong-token"})}
	if _, err := gcp.CheckCredentials(ctx, cfg); err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong-token") {
		t.Fatalf("CheckCredentials with a refused base token = %v, want a 401 without the token", err)
	}
}

// A call whose impersonated token IAM refuses fails at once as an
// authorization error naming the token creator role, not as a lost
// connection retried MaxAttempts times.
func TestImpersonationRefusedMidCall(t *testing.T) {
	const locked = "locked-sa@mixedk8s-lab.iam.gserviceaccount.com"
	e := newEnv(t, func(c *gcp.Config) { c.ImpersonateServiceAccount = locked })
	if _, err := e.srv.OwnerServiceAccount("locked-sa"); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.cloud.FindNetwork(context.Background(), "demo")
	var ce *clouds.Error
	if !errors.As(err, &ce) || ce.Kind != clouds.KindAuth || !strings.Contains(ce.Fix, "roles/iam.serviceAccountTokenCreator") {
		t.Fatalf("FindNetwork with a refused impersonation = %#v, want an auth error whose fix names the token creator role", err)
	}
	if n := e.srv.Calls()["serviceAccounts.generateAccessToken"]; n != 1 {
		t.Fatalf("generateAccessToken was called %d times, want once (no retry of a refusal)", n)
	}
}
