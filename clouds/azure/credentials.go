package azure

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Credentials. Config names at most one source; none is azidentity's
// DefaultAzureCredential. Each source is azidentity's own credential type
// (https://learn.microsoft.com/azure/developer/go/sdk/authentication/credential-chains
// lists them), so a token is asked for as the SDK asks for it anywhere.

// ClientCertificate signs in as a service principal with a certificate
// and its private key, PEM or PKCS#12 (what azidentity.ParseCertificates reads).
type ClientCertificate struct {
	TenantID, ClientID string
	// Path is the file; Password unlocks a PKCS#12 file.
	Path, Password string
}

// String redacts the password.
func (c ClientCertificate) String() string {
	return fmt.Sprintf("ClientCertificate{TenantID: %q, ClientID: %q, Path: %q, password redacted}", c.TenantID, c.ClientID, c.Path)
}

// WorkloadIdentity signs in by workload identity federation: a token an
// external identity provider issued (a Kubernetes service account's, a CI
// system's OIDC token), read from a file at every sign-in, exchanged for
// an Entra token through the client assertion grant. Empty fields default
// to AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE.
type WorkloadIdentity struct {
	TenantID, ClientID, TokenFilePath string
}

// ManagedIdentity signs in as the host's managed identity: the
// user-assigned one with ClientID, else the system-assigned one.
type ManagedIdentity struct {
	ClientID string
}

// sources counts the credential sources cfg names.
func (cfg Config) sources() []string {
	var out []string
	if cfg.Credential != nil {
		out = append(out, "Credential")
	}
	if cfg.ClientSecret != nil {
		out = append(out, "ClientSecret")
	}
	if cfg.ClientCertificate != nil {
		out = append(out, "ClientCertificate")
	}
	if cfg.WorkloadIdentity != nil {
		out = append(out, "WorkloadIdentity")
	}
	if cfg.ManagedIdentity != nil {
		out = append(out, "ManagedIdentity")
	}
	if cfg.AzureCLI {
		out = append(out, "AzureCLI")
	}
	return out
}

// describeCredential names the source cfg's credential is, and for the
// default chain the sources it tries in azidentity's order
// (mod: sdk/azidentity default_azure_credential.go). It names files and
// IDs, never a secret.
func describeCredential(cfg Config) string {
	switch {
	case cfg.Credential != nil:
		return "the credential the caller passed"
	case cfg.ClientSecret != nil:
		return fmt.Sprintf("ClientSecretCredential (service principal %s in tenant %s, with a client secret)", cfg.ClientSecret.ClientID, cfg.ClientSecret.TenantID)
	case cfg.ClientCertificate != nil:
		return fmt.Sprintf("ClientCertificateCredential (service principal %s in tenant %s, with the certificate in %s)", cfg.ClientCertificate.ClientID, cfg.ClientCertificate.TenantID, cfg.ClientCertificate.Path)
	case cfg.WorkloadIdentity != nil:
		w := cfg.WorkloadIdentity
		return fmt.Sprintf("WorkloadIdentityCredential (workload identity federation: client %s in tenant %s, the federated token in %s)",
			orEnv(w.ClientID, "AZURE_CLIENT_ID"), orEnv(w.TenantID, "AZURE_TENANT_ID"), orEnv(w.TokenFilePath, "AZURE_FEDERATED_TOKEN_FILE"))
	case cfg.ManagedIdentity != nil:
		if id := cfg.ManagedIdentity.ClientID; id != "" {
			return fmt.Sprintf("ManagedIdentityCredential (the user-assigned managed identity %s)", id)
		}
		return "ManagedIdentityCredential (the host's system-assigned managed identity)"
	case cfg.AzureCLI:
		return "AzureCLICredential (the account `az login` signed in, through `az account get-access-token`)"
	}
	return "DefaultAzureCredential, which tries in order: EnvironmentCredential (AZURE_TENANT_ID and AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH), " +
		"WorkloadIdentityCredential (AZURE_FEDERATED_TOKEN_FILE), ManagedIdentityCredential, AzureCLICredential, AzureDeveloperCLICredential, AzurePowerShellCredential"
}

func orEnv(v, env string) string {
	if v != "" {
		return v
	}
	return "$" + env
}

func newCredential(cfg Config, copts policy.ClientOptions) (azcore.TokenCredential, error) {
	// Instance discovery asks the public cloud's metadata endpoint; a
	// sovereign cloud or an emulator must not depend on it.
	noDiscovery := cfg.Cloud.AuthorityHost != ""
	switch {
	case cfg.ClientSecret != nil:
		s := cfg.ClientSecret
		cred, err := azidentity.NewClientSecretCredential(s.TenantID, s.ClientID, s.Secret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: copts, DisableInstanceDiscovery: noDiscovery})
		if err != nil {
			return nil, fmt.Errorf("azure: the service principal credential is unusable: %w; fix: check the tenant ID, client ID and secret", scrub(err, s.Secret))
		}
		return cred, nil
	case cfg.ClientCertificate != nil:
		c := cfg.ClientCertificate
		data, err := os.ReadFile(c.Path)
		if err != nil {
			return nil, fmt.Errorf("azure: cannot read the client certificate: %w; fix: point the certificate path at a PEM or PKCS#12 file holding the certificate and its private key", err)
		}
		var pw []byte
		if c.Password != "" {
			pw = []byte(c.Password)
		}
		certs, key, err := azidentity.ParseCertificates(data, pw)
		if err != nil {
			return nil, fmt.Errorf("azure: the client certificate in %s is unusable: %w; fix: give a PEM or PKCS#12 file with the certificate and its unencrypted private key, or the PKCS#12 file's password", c.Path, scrub(err, c.Password))
		}
		cred, err := azidentity.NewClientCertificateCredential(c.TenantID, c.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: copts, DisableInstanceDiscovery: noDiscovery})
		if err != nil {
			return nil, fmt.Errorf("azure: the service principal certificate credential is unusable: %w; fix: check the tenant ID and client ID", err)
		}
		return cred, nil
	case cfg.WorkloadIdentity != nil:
		w := cfg.WorkloadIdentity
		cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: copts,
			TenantID: w.TenantID, ClientID: w.ClientID, TokenFilePath: w.TokenFilePath, DisableInstanceDiscovery: noDiscovery})
		if err != nil {
			return nil, fmt.Errorf("azure: the workload identity credential is unusable: %w; fix: set the tenant ID, the client ID and the token file (or AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE)", err)
		}
		return cred, nil
	case cfg.ManagedIdentity != nil:
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: copts}
		if id := cfg.ManagedIdentity.ClientID; id != "" {
			o.ID = azidentity.ClientID(id)
		}
		cred, err := azidentity.NewManagedIdentityCredential(o)
		if err != nil {
			return nil, fmt.Errorf("azure: the managed identity credential is unusable: %w; fix: run on a host with a managed identity, or choose another credential", err)
		}
		return cred, nil
	case cfg.AzureCLI:
		cred, err := azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: cfg.TenantID})
		if err != nil {
			return nil, fmt.Errorf("azure: the Azure CLI credential is unusable: %w; fix: install the Azure CLI and run az login", err)
		}
		return cred, nil
	}
	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: copts, DisableInstanceDiscovery: noDiscovery, TenantID: cfg.TenantID})
	if err != nil {
		return nil, fmt.Errorf("azure: no credential found: %w; fix: sign in with az login, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or run with a managed identity", err)
	}
	return cred, nil
}

// CredentialsError is a credential check that failed: the credential (or
// chain) tried, the step that failed and why. It holds no secret: the
// messages it wraps are scrubbed of the client secret and the
// certificate's password.
type CredentialsError struct {
	// Credential names the credential or chain, as a sentence.
	Credential string
	// Step is what failed: "build the credential", "get a token for ...".
	Step string
	// Err is the cause, scrubbed.
	Err error
}

func (e *CredentialsError) Error() string {
	return fmt.Sprintf("failed to %s: %s. Tried %s", e.Step, strings.TrimRight(e.Err.Error(), ". \n"), e.Credential)
}

func (e *CredentialsError) Unwrap() error { return e.Err }

// CheckCredentials builds cfg's credential and gets one token for Azure
// Resource Manager with it, the check a provider makes once before any
// plan. It makes no ARM call.
func CheckCredentials(ctx context.Context, cfg Config) error {
	secrets := []string{}
	if cfg.ClientSecret != nil {
		secrets = append(secrets, cfg.ClientSecret.Secret)
	}
	if cfg.ClientCertificate != nil {
		secrets = append(secrets, cfg.ClientCertificate.Password)
	}
	fail := func(step string, err error) error {
		return &CredentialsError{Credential: describeCredential(cfg), Step: step, Err: scrub(err, secrets...)}
	}
	if s := cfg.sources(); len(s) > 1 {
		return fail("build the credential", fmt.Errorf("the configuration names the credential sources %s; name one", strings.Join(s, " and ")))
	}
	copts, err := clientOptions(cfg)
	if err != nil {
		return fail("build the credential", err)
	}
	cred := cfg.Credential
	if cred == nil {
		if cred, err = newCredential(cfg, copts); err != nil {
			return fail("build the credential", err)
		}
	}
	scope := armScope(copts.Cloud)
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}}); err != nil {
		return fail("get a token for Azure Resource Manager (scope "+scope+")", entraReason(err))
	}
	return nil
}

// aadstsRE finds Entra ID's reason in a token endpoint's reply: the
// AADSTS code and its sentence, before the trace lines
// (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
var aadstsRE = regexp.MustCompile(`AADSTS[0-9]+:[^"\\]*`)

// entraReason shortens azidentity's error, which carries the whole HTTP
// reply, to its first line and Entra's reason, when it has one.
func entraReason(err error) error {
	msg := err.Error()
	m := aadstsRE.FindString(msg)
	if m == "" {
		return err
	}
	first, _, _ := strings.Cut(msg, "\n")
	return fmt.Errorf("%s %s", strings.TrimSpace(first), strings.TrimSpace(m))
}

// armScope is the token scope of the cloud's Resource Manager: its
// audience and "/.default", as the ARM pipeline asks for it
// (mod: sdk/azcore/arm/runtime/pipeline.go).
func armScope(cc cloud.Configuration) string {
	return cc.Services[cloud.ResourceManager].Audience + "/.default"
}

// scrub replaces every non-empty secret in err's message.
func scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		if len(s) >= 4 {
			clean = strings.ReplaceAll(clean, s, "[redacted]")
		}
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}
