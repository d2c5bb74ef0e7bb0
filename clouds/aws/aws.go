// Package aws is the clouds.Cloud for Amazon EC2, on aws-sdk-go-v2.
//
// A cluster's network is one VPC with the node CIDR, one subnet per
// configured zone (or one subnet over the whole CIDR), an internet gateway
// with a route table for admin access, and two security groups, one per
// role, that open only what the role needs. In an existing network
// (Config.VPCID) only the security groups are the cluster's. Every object carries the
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
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Config selects the account, region and endpoints.
type Config struct {
	// Region, e.g. "eu-west-1". Empty means the SDK's chain: AWS_REGION,
	// AWS_DEFAULT_REGION, then the profile's region in the shared config
	// file; New fails when none of them names one.
	Region string
	// Tags go on every object the cloud creates, beside its own (the spec's
	// tags; CheckTags says which EC2 refuses).
	Tags map[string]string
	// Zones get one subnet each; empty means one subnet in a zone EC2 picks.
	// Not used with SubnetIDs.
	Zones []string
	// KMSKeyID is the customer managed KMS key (key ID, key ARN, alias
	// name or alias ARN) that encrypts the cluster's SSM SecureString
	// parameters and the instances' root volumes; empty uses the AWS
	// managed keys aws/ssm and aws/ebs. The key policy must let the
	// credentials use it through SSM and EC2 (docs/guides/security.md).
	KMSKeyID string
	// VPCID and SubnetIDs, when set, are an existing network the cluster
	// goes in (existing.go): its own security groups
	// are created in the VPC, its nodes spread over the subnets, and
	// nothing else of the network is created or deleted.
	VPCID     string
	SubnetIDs []string
	// Endpoint is the base URL of every service Endpoints leaves empty
	// (EC2, Elastic Load Balancing v2, SSM and STS), each client's
	// BaseEndpoint (the lab serves them all at one URL and tells them
	// apart by their requests); empty uses the SDK's endpoint resolution,
	// which reads AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> too.
	Endpoint string
	// Endpoints are per-service base URLs (VPC interface endpoints, a
	// proxy); each wins over Endpoint for its service.
	Endpoints Endpoints
	// CABundle is PEM CA certificates trusted in addition to the system pool.
	CABundle []byte
	// Profile names a profile of the shared config and credentials files
	// whose credentials (and region, when Region is empty) are used; empty
	// means AWS_PROFILE, then the SDK's default chain (environment, web
	// identity, shared files, container and instance roles).
	Profile string
	// AccessKeyID and SecretAccessKey, when set, are static credentials that
	// replace the profile's and the default chain's (the lab's emulator).
	AccessKeyID, SecretAccessKey string
	// AssumeRole, when set, is a role the credentials above assume through
	// STS; every call is then made with the role's temporary credentials,
	// renewed before they expire.
	AssumeRole *AssumeRole
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

// ErrNoRegion is New's error when nothing names a region.
var ErrNoRegion = errors.New("no region: neither Config.Region, AWS_REGION, AWS_DEFAULT_REGION nor the profile's region in the shared config file names one")

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

type subnetRef struct{ id, zone, cidr string }

var _ clouds.Cloud = (*Cloud)(nil)

// New builds the EC2, ELBv2 and SSM clients. It makes no API call.
func New(ctx context.Context, cfg Config) (*Cloud, error) {
	if cfg.RetryMode != "" && cfg.RetryMode != "adaptive" && cfg.RetryMode != "standard" {
		return nil, fmt.Errorf("aws: Config.RetryMode %q is unknown; use \"adaptive\" or \"standard\"", cfg.RetryMode)
	}
	if (cfg.VPCID == "") != (len(cfg.SubnetIDs) == 0) {
		return nil, errors.New("aws: Config.VPCID and Config.SubnetIDs go together; set both for an existing network, or neither")
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
	awsCfg, err := loadSDKConfig(ctx, cfg, "")
	if err != nil {
		return nil, err
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("aws: %w; fix: set the region, e.g. \"us-east-1\"", ErrNoRegion)
	}
	cfg.Region = awsCfg.Region
	c := &Cloud{cfg: cfg, amis: map[string]string{}, roots: map[string]string{}, subnets: map[string][]subnetRef{}, firstBoot: userData}
	c.ec2 = ec2.NewFromConfig(awsCfg, func(o *ec2.Options) { o.BaseEndpoint = cfg.endpoint(cfg.Endpoints.EC2) })
	c.elb = elb.NewFromConfig(awsCfg, func(o *elb.Options) { o.BaseEndpoint = cfg.endpoint(cfg.Endpoints.ELBv2) })
	c.ssm = ssm.NewFromConfig(awsCfg, func(o *ssm.Options) { o.BaseEndpoint = cfg.endpoint(cfg.Endpoints.SSM) })
	return c, nil
}

// Region is the region the cloud acts in: Config.Region, or the one the SDK's chain resolved.
func (c *Cloud) Region() string { return c.cfg.Region }

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
