package ec2

import (
	"slices"
	"strings"
)

// KMSKey is a customer managed KMS key of the lab's account, in the
// server's region: what SSM and EBS accept as a KeyId.
type KMSKey struct {
	// ID is the key ID, a UUID (or mrk-... for a multi-Region key).
	ID string
	// Aliases are the key's alias names, each starting with "alias/".
	Aliases []string
}

// LabKMSKey is the key every server has unless Options.KMSKeys says otherwise.
var LabKMSKey = KMSKey{ID: "0b6c2f6e-5d1a-4c3e-9f3b-6a1d2c4e5f70", Aliases: []string{"alias/mixedk8s-lab"}}

// Default keys of the account, as SSM and EBS name them when no KeyId is
// given: the AWS managed keys of each service
// (https://docs.aws.amazon.com/systems-manager/latest/userguide/secure-string-parameter-kms-encryption.html,
// https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html).
const (
	DefaultSSMKey = "alias/aws/ssm"
	DefaultEBSKey = "alias/aws/ebs"
)

// KeyARN is a key's ARN in the server's region and account.
func (s *Server) KeyARN(k KMSKey) string {
	return "arn:aws:kms:" + s.opts.Region + ":" + AccountID + ":key/" + k.ID
}

// resolveKey finds the key a KeyId names, in the forms both SSM's
// PutParameter KeyId and EBS's KmsKeyId take: key ID, key ARN, alias name
// or alias ARN (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html,
// https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#key-id).
// A key is regional and belongs to one account: an ARN of another region
// or account names no key here. It returns the key's ARN, or false.
func (s *Server) resolveKey(ref string) (string, bool) {
	name := ref
	if rest, ok := strings.CutPrefix(ref, "arn:aws:kms:"); ok {
		prefix := s.opts.Region + ":" + AccountID + ":"
		if name, ok = strings.CutPrefix(rest, prefix); !ok {
			return "", false
		}
	}
	id, isKey := strings.CutPrefix(name, "key/")
	for _, k := range s.opts.KMSKeys {
		switch {
		case isKey && id == k.ID, !isKey && name == k.ID && !strings.HasPrefix(ref, "arn:"):
			return s.KeyARN(k), true
		case strings.HasPrefix(name, "alias/") && slices.Contains(k.Aliases, name):
			return s.KeyARN(k), true
		}
	}
	return "", false
}
