// Package aws is the clouds.Cloud for Amazon EC2, on aws-sdk-go-v2.
//
// A cluster's network is one VPC with the node CIDR, one subnet per
// configured zone (or one subnet over the whole CIDR), an internet gateway
// with a route table for admin access, and two security groups, one per
// role, that open only what the role needs. Every object carries the
// TagCluster tag and a Name tag <cluster>-<what>; Ensure* find by
// tag before they create, so a rerun adopts what exists and a converged
// rerun makes no mutating call.
//
// Instances are created with RunInstances and a ClientToken derived from
// the cluster and node name, so a create retried after a lost reply never
// duplicates. EC2 keeps a token for at least a day after its instance
// terminated; a token that answers with a terminated instance is moved to
// its next generation (<token>-g2, ...), which keeps replacements of a
// deleted node deterministic too.
//
// Calls go through the SDK's adaptive retryer (throttling and 5xx are
// retried with backoff and client-side rate limiting); what still fails
// comes back as a *clouds.Error whose Kind follows the EC2 error code and
// whose Fix names the field or IAM permission to change.
//
// The same code drives the lab's EC2 emulator (test/lab/ec2): only
// Config.Endpoint, Config.CABundle and the static keys differ. Config is plain
// Go values, so callers never handle SDK types.
package aws

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Config selects the account, region and endpoint.
type Config struct {
	// Region, e.g. "eu-west-1". Required.
	Region string
	// Zones get one subnet each; empty means one subnet in a zone EC2 picks.
	Zones []string
	// Endpoint overrides the EC2, Elastic Load Balancing (v2) and SSM
	// endpoint, each client's BaseEndpoint (the lab, which tells the
	// services apart by their requests); empty uses the SDK's endpoint
	// resolution.
	Endpoint string
	// CABundle is PEM CA certificates trusted in addition to the system pool.
	CABundle []byte
	// Profile names a profile of the shared config and credentials files
	// whose credentials are used; empty means the SDK's default chain
	// (environment, shared files, SSO, IMDS).
	Profile string
	// AccessKeyID and SecretAccessKey, when set, are static credentials that
	// replace the profile's and the default chain's (the lab's emulator).
	AccessKeyID, SecretAccessKey string
	// MaxAttempts per API call, retries included; default 10.
	MaxAttempts int
	// RetryMode is "adaptive" (default: backoff plus client-side rate
	// limiting after throttling, as AWS recommends for bursty callers) or
	// "standard" (backoff only).
	RetryMode string
	// MaxBackoff between retried attempts; default 20s (the SDK's).
	MaxBackoff time.Duration
	// PollInterval between DescribeInstances calls while waiting for an
	// instance to run; default 5s.
	PollInterval time.Duration
	// PageSize is DescribeInstances' MaxResults; default 1000 (EC2's maximum).
	PageSize int
}

// Cloud implements clouds.Cloud on EC2. Create it with New.
type Cloud struct {
	cfg Config
	ec2 *ec2.Client
	elb *elb.Client
	ssm *ssm.Client

	mu      sync.Mutex
	amis    map[string]string      // SSM parameter -> AMI ID
	roots   map[string]string      // AMI ID -> root device name
	subnets map[string][]subnetRef // cluster -> its subnets, one per zone, in zone order

	// firstBoot renders a request's user data; tests replace it.
	firstBoot func(clouds.InstanceRequest) (string, error)
}

type subnetRef struct{ id, zone string }

var _ clouds.Cloud = (*Cloud)(nil)

// New builds the EC2, ELBv2 and SSM clients. It makes no API call.
func New(ctx context.Context, cfg Config) (*Cloud, error) {
	if cfg.RetryMode != "" && cfg.RetryMode != "adaptive" && cfg.RetryMode != "standard" {
		return nil, fmt.Errorf("aws: Config.RetryMode %q is unknown; use \"adaptive\" or \"standard\"", cfg.RetryMode)
	}
	if cfg.Region == "" {
		return nil, errors.New("aws: Config.Region is empty; set the region, e.g. \"us-east-1\"")
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, errors.New("aws: Config.AccessKeyID and Config.SecretAccessKey go together; set both, or neither to use the default credential chain")
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 20 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = 1000
	}
	var pool *x509.CertPool
	if len(cfg.CABundle) > 0 {
		sys, err := x509.SystemCertPool()
		if err != nil || sys == nil {
			sys = x509.NewCertPool()
		}
		if !sys.AppendCertsFromPEM(cfg.CABundle) {
			return nil, errors.New("aws: Config.CABundle holds no PEM certificate; pass the CA certificate in PEM form")
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
		config.WithRegion(cfg.Region),
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer { return newRetryer(cfg) }),
	}
	creds, err := credentialsOf(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if creds != nil {
		opts = append(opts, config.WithCredentialsProvider(creds))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws: failed to load the SDK configuration: %w", err)
	}
	c := &Cloud{cfg: cfg, amis: map[string]string{}, roots: map[string]string{}, subnets: map[string][]subnetRef{}, firstBoot: userData}
	c.ec2 = ec2.NewFromConfig(awsCfg, func(o *ec2.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	c.elb = elb.NewFromConfig(awsCfg, func(o *elb.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	c.ssm = ssm.NewFromConfig(awsCfg, func(o *ssm.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return c, nil
}

// credentialsOf is the static keys, else the named profile's credentials,
// else nil: the SDK's default chain.
func credentialsOf(ctx context.Context, cfg Config) (aws.CredentialsProvider, error) {
	if cfg.AccessKeyID != "" {
		return credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, ""), nil
	}
	if cfg.Profile == "" {
		return nil, nil
	}
	pc, err := config.LoadDefaultConfig(ctx, config.WithSharedConfigProfile(cfg.Profile))
	if err != nil {
		return nil, fmt.Errorf("failed to load the AWS profile %q: %w; fix: check the profile name against ~/.aws/config", cfg.Profile, err)
	}
	return pc.Credentials, nil
}

// newRetryer is the SDK's adaptive (or standard) mode, except that
// capacity errors are not retried: the same type in the same zone seconds
// later rarely helps, and the user has to choose.
func newRetryer(cfg Config) aws.Retryer {
	standard := func(so *retry.StandardOptions) {
		so.MaxAttempts = cfg.MaxAttempts
		so.MaxBackoff = cfg.MaxBackoff
		so.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			var ae smithy.APIError
			if errors.As(err, &ae) && kindOfCode(ae.ErrorCode()) == clouds.KindCapacity {
				return aws.FalseTernary
			}
			return aws.UnknownTernary
		})}, so.Retryables...)
	}
	if cfg.RetryMode == "standard" {
		return retry.NewStandard(standard)
	}
	return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
		o.StandardOptions = append(o.StandardOptions, standard)
	})
}

// Name implements clouds.Cloud.
func (c *Cloud) Name() string { return "aws" }
