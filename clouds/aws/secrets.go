package aws

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// The cluster's secrets are SSM SecureString parameters under one path per
// cluster, encrypted with Config.KMSKeyID (else the account's aws/ssm key)
// and tagged like every other object.
func secretPath(cluster string) string { return "/mixedk8s/" + cluster + "/" }

// EnsureSecret implements clouds.Cloud: PutParameter without overwrite is
// atomic, so two processes racing agree on the first value.
func (c *Cloud) EnsureSecret(ctx context.Context, cluster string, name clouds.SecretName, value []byte) ([]byte, error) {
	if v, ok, err := c.Secret(ctx, cluster, name); err != nil || ok {
		return v, err
	}
	param := Profile.SecretName(cluster, name)
	k := call{op: "PutParameter", object: fmt.Sprintf("secret %q", param)}
	in := &ssm.PutParameterInput{
		Name:      aws.String(param),
		Value:     aws.String(base64.StdEncoding.EncodeToString(value)),
		Type:      ssmtypes.ParameterTypeSecureString,
		Tier:      ssmtypes.ParameterTierIntelligentTiering,
		Overwrite: aws.Bool(false),
		Tags:      c.ssmTags(cluster),
	}
	if c.cfg.KMSKeyID != "" {
		in.KeyId = aws.String(c.cfg.KMSKeyID)
	}
	_, err := c.ssm.PutParameter(ctx, in)
	var exists *ssmtypes.ParameterAlreadyExists
	switch {
	case err == nil:
		return value, nil
	case hasCode(err, "InvalidKeyId"):
		return nil, &clouds.Error{Kind: clouds.KindInvalid, Op: "PutParameter", Object: k.object, Code: "InvalidKeyId",
			Err: fmt.Errorf("SSM cannot use KMS key %q: %w", c.cfg.KMSKeyID, err),
			Fix: fmt.Sprintf("set aws.kms_key_id to an enabled symmetric key of %s that the credentials may use through SSM (kms:Encrypt, kms:Decrypt, kms:GenerateDataKey with kms:ViaService ssm.%s.amazonaws.com)", c.cfg.Region, c.cfg.Region)}
	case errors.As(err, &exists):
		v, ok, err := c.Secret(ctx, cluster, name)
		if err == nil && !ok {
			err = &clouds.Error{Kind: clouds.KindTransient, Op: "GetParameter", Object: k.object, Err: errors.New("the parameter exists but cannot be read yet")}
		}
		return v, err
	}
	return nil, k.classify(err)
}

// Secret implements clouds.Cloud.
func (c *Cloud) Secret(ctx context.Context, cluster string, name clouds.SecretName) ([]byte, bool, error) {
	param := Profile.SecretName(cluster, name)
	out, err := c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param), WithDecryption: aws.Bool(true)})
	var missing *ssmtypes.ParameterNotFound
	if errors.As(err, &missing) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, call{op: "GetParameter", object: fmt.Sprintf("secret %q", param)}.classify(err)
	}
	v, err := base64.StdEncoding.DecodeString(aws.ToString(out.Parameter.Value))
	if err != nil {
		return nil, false, fmt.Errorf("secret %q is not what mixedk8s stored (not base64); fix: delete it if the cluster has no nodes left", param)
	}
	return v, true, nil
}

// DeleteSecrets implements clouds.Cloud.
func (c *Cloud) DeleteSecrets(ctx context.Context, cluster string) error {
	k := call{op: "GetParametersByPath", object: fmt.Sprintf("secrets of cluster %q", cluster)}
	var names []string
	pages := ssm.NewGetParametersByPathPaginator(c.ssm, &ssm.GetParametersByPathInput{Path: aws.String(secretPath(cluster)), Recursive: aws.Bool(true)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return k.classify(err)
		}
		for _, p := range page.Parameters {
			names = append(names, aws.ToString(p.Name))
		}
	}
	// DeleteParameters takes at most 10 names.
	for len(names) > 0 {
		batch := names[:min(10, len(names))]
		names = names[len(batch):]
		if _, err := c.ssm.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: batch}); err != nil {
			return call{op: "DeleteParameters", object: k.object}.classify(err)
		}
	}
	return nil
}

// ssmTags are a secret's tags: the cluster's, then the user's.
func (c *Cloud) ssmTags(cluster string) []ssmtypes.Tag {
	tags := []ssmtypes.Tag{{Key: aws.String(TagCluster), Value: aws.String(cluster)}}
	for _, k := range sortedKeys(c.cfg.Tags) {
		if k != TagCluster {
			tags = append(tags, ssmtypes.Tag{Key: aws.String(k), Value: aws.String(c.cfg.Tags[k])})
		}
	}
	return tags
}
