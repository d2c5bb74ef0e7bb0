package aws

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Endpoints are per-service base URLs; an empty one falls back to
// Config.Endpoint, then to the SDK's resolution.
type Endpoints struct {
	EC2, ELBv2, SSM, STS string
}

// AssumeRole is an IAM role to assume with the configured credentials,
// through aws-sdk-go-v2's stscreds.AssumeRoleProvider behind a credentials
// cache, as the AWS CLI's role_arn profiles do.
type AssumeRole struct {
	// RoleARN is the role, arn:aws:iam::<account>:role/<name>. Required.
	RoleARN string
	// SessionName names the session in CloudTrail and in the assumed-role
	// ARN; empty means the SDK's aws-go-sdk-<time>.
	SessionName string
	// ExternalID is the value the role's trust policy requires in its
	// sts:ExternalId condition, if it has one.
	ExternalID string
	// Duration of each session; zero means the SDK's 15 minutes. STS takes
	// 15 minutes to the role's maximum session duration (at most 12 hours).
	Duration time.Duration
}

// endpoint is the base URL for a service whose own endpoint is own.
func (cfg Config) endpoint(own string) *string {
	switch {
	case own != "":
		return aws.String(own)
	case cfg.Endpoint != "":
		return aws.String(cfg.Endpoint)
	}
	return nil
}

// loadSDKConfig is the SDK configuration New's clients share: the CA
// bundle, the retryer, the region chain (fallbackRegion when nothing names
// one, if set) and the credential chain, with the role assumed when
// Config.AssumeRole is set.
func loadSDKConfig(ctx context.Context, cfg Config, fallbackRegion string) (aws.Config, error) {
	var pool *x509.CertPool
	if len(cfg.CABundle) > 0 {
		sys, err := x509.SystemCertPool()
		if err != nil || sys == nil {
			sys = x509.NewCertPool()
		}
		if !sys.AppendCertsFromPEM(cfg.CABundle) {
			return aws.Config{}, errors.New("aws: Config.CABundle holds no PEM certificate; pass the CA certificate in PEM form")
		}
		pool = sys
	}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		if pool == nil {
			return
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.RootCAs = pool
	})
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer { return newRetryer(cfg) }),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		if cfg.Profile != "" {
			return aws.Config{}, fmt.Errorf("aws: failed to load the profile %q: %w; fix: check the profile name against the shared config file (~/.aws/config)", cfg.Profile, err)
		}
		return aws.Config{}, fmt.Errorf("aws: failed to load the SDK configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = fallbackRegion
	}
	if cfg.AssumeRole != nil {
		awsCfg.Credentials = aws.NewCredentialsCache(assumeRoleProvider(awsCfg, cfg))
	}
	return awsCfg, nil
}

// assumeRoleProvider assumes Config.AssumeRole with base's credentials,
// through the STS endpoint the configuration names.
func assumeRoleProvider(base aws.Config, cfg Config) aws.CredentialsProvider {
	ar := cfg.AssumeRole
	client := sts.NewFromConfig(base, func(o *sts.Options) { o.BaseEndpoint = cfg.endpoint(cfg.Endpoints.STS) })
	return stscreds.NewAssumeRoleProvider(client, ar.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = ar.SessionName
		if ar.ExternalID != "" {
			o.ExternalID = aws.String(ar.ExternalID)
		}
		if ar.Duration > 0 {
			o.Duration = ar.Duration
		}
	})
}

// Identity is who a set of credentials is, as STS GetCallerIdentity says.
type Identity struct {
	Account, ARN, UserID string
}

// CredentialsError is a credential check that failed: which chain was
// tried, which source answered, what failed. It holds no secret: the
// messages of the errors it wraps are scrubbed of the keys and token.
type CredentialsError struct {
	// Chain is the credential sources tried, in order, as a sentence.
	Chain string
	// Source is the SDK's name for the source that produced credentials,
	// empty when none did.
	Source string
	// Step is what failed: "find credentials", "assume role ...", "call STS GetCallerIdentity".
	Step string
	// Err is the cause, scrubbed.
	Err error
}

func (e *CredentialsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "failed to %s: %s. Tried %s", e.Step, strings.TrimRight(e.Err.Error(), ". "), e.Chain)
	if e.Source != "" {
		fmt.Fprintf(&b, "; credentials came from %s", e.Source)
	}
	return b.String()
}

func (e *CredentialsError) Unwrap() error { return e.Err }

// CheckCredentials resolves cfg's credentials once, assumes its role if it
// has one, and asks STS GetCallerIdentity who they are: the check a
// provider makes before planning. With no region anywhere it asks STS in
// us-east-1, where its global endpoint is.
func CheckCredentials(ctx context.Context, cfg Config) (Identity, error) {
	chain := describeChain(cfg)
	base := cfg
	base.AssumeRole = nil
	awsCfg, err := loadSDKConfig(ctx, base, "us-east-1")
	if err != nil {
		return Identity{}, &CredentialsError{Chain: chain, Step: "load the AWS configuration", Err: err}
	}
	var secrets []string
	fail := func(step, source string, err error) error {
		return &CredentialsError{Chain: chain, Source: source, Step: step, Err: scrub(err, append(secrets, cfg.SecretAccessKey)...)}
	}
	if awsCfg.Credentials == nil {
		return Identity{}, fail("find credentials", "", errors.New("no credential source is configured"))
	}
	found, err := awsCfg.Credentials.Retrieve(ctx)
	if err != nil {
		return Identity{}, fail("find credentials", "", err)
	}
	secrets = append(secrets, found.SecretAccessKey, found.SessionToken)
	source := found.Source
	if cfg.AssumeRole != nil {
		awsCfg.Credentials = aws.NewCredentialsCache(assumeRoleProvider(awsCfg, cfg))
		assumed, err := awsCfg.Credentials.Retrieve(ctx)
		if err != nil {
			return Identity{}, fail("assume role "+cfg.AssumeRole.RoleARN, source, err)
		}
		secrets = append(secrets, assumed.SecretAccessKey, assumed.SessionToken)
		source += " then AssumeRole " + cfg.AssumeRole.RoleARN
	}
	client := sts.NewFromConfig(awsCfg, func(o *sts.Options) { o.BaseEndpoint = cfg.endpoint(cfg.Endpoints.STS) })
	out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Identity{}, fail("call STS GetCallerIdentity", source, err)
	}
	return Identity{Account: aws.ToString(out.Account), ARN: aws.ToString(out.Arn), UserID: aws.ToString(out.UserId)}, nil
}

// describeChain names the credential sources the SDK tries for cfg, in
// its order (aws-sdk-go-v2 config/resolve_credentials.go,
// resolveCredentialChain and resolveCredsFromProfile).
func describeChain(cfg Config) string {
	var chain string
	switch {
	case cfg.AccessKeyID != "":
		chain = "the static keys the configuration passes"
	case cfg.Profile != "":
		chain = fmt.Sprintf("the profile %q of the shared config and credentials files (its keys, source_profile and role_arn, credential_source, web identity, SSO, login session or credential_process)", cfg.Profile)
	default:
		chain = "the AWS SDK's default chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, then AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, " +
			"then the profile AWS_PROFILE names (else default) of the shared config and credentials files (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE), " +
			"then the container credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI), then the EC2 instance role (IMDS)"
	}
	if ar := cfg.AssumeRole; ar != nil {
		chain += ", then STS AssumeRole of " + ar.RoleARN
		if ar.ExternalID != "" {
			chain += " with the configured external ID"
		}
	}
	return chain
}

// scrub replaces every non-empty secret in err's message.
func scrub(err error, secrets ...string) error {
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
