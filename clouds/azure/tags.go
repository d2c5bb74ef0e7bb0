package azure

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Azure's tag rules (https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations):
// names of at most 512 characters (128 on storage accounts; none here)
// without < > % & \ ? /, values of at most 256, and 50 tags per resource;
// a Key Vault secret takes at most 15 tags, the binding limit
// (https://learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates, Object tags).
const (
	maxSecretTags = 15
	maxTagName    = 512
	maxTagValue   = 256
	badTagChars   = `<>%&\?/`
)

// ownSecretTags is how many tags of the project's own a secret carries (cluster, secret name).
const ownSecretTags = 2

// checkTags is Profile.CheckTags.
func checkTags(tags map[string]string) []clouds.TagProblem {
	var out []clouds.TagProblem
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		bad := func(problem, fix string) { out = append(out, clouds.TagProblem{Key: k, Problem: problem, Fix: fix}) }
		switch {
		case k == "" || utf8.RuneCountInString(k) > maxTagName:
			bad(fmt.Sprintf("tag name %q has %d characters; Azure tag names have 1 to %d", k, utf8.RuneCountInString(k), maxTagName), "shorten the name")
		case strings.ContainsAny(k, badTagChars):
			bad(fmt.Sprintf("tag name %q has one of %s, which Azure refuses in tag names", k, badTagChars), "replace them, e.g. '/' with '_'")
		}
		if v := tags[k]; utf8.RuneCountInString(v) > maxTagValue {
			bad(fmt.Sprintf("the value of tag %q has %d characters; Azure tag values have at most %d", k, utf8.RuneCountInString(v), maxTagValue), "shorten the value")
		}
	}
	if len(tags) > maxSecretTags-ownSecretTags {
		out = append(out, clouds.TagProblem{Key: slices.Max(slices.Collect(maps.Keys(tags))),
			Problem: fmt.Sprintf("%d tags: the cluster's Key Vault secrets carry at most %d, and mixedk8s's own take %d", len(tags), maxSecretTags, ownSecretTags),
			Fix:     fmt.Sprintf("keep at most %d tags", maxSecretTags-ownSecretTags)})
	}
	return out
}
