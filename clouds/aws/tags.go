package aws

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// EC2's tag restrictions (EC2 user guide "Tag your Amazon EC2 resources",
// Tag restrictions; the same for ELB and SSM): at most 50 tags per
// resource, keys of 1-128 and values of 0-256 UTF-8 characters, letters,
// digits, spaces and + - = . _ : / @, and the aws: prefix reserved for AWS.
const (
	maxTags        = 50
	maxTagKey      = 128
	maxTagValue    = 256
	reservedPrefix = "aws:"
)

// ownTags is the most tags of the project's own an object carries: cluster, Name, pool, role, node.
const ownTags = 5

var tagChars = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

// checkTags is Profile.CheckTags.
func checkTags(tags map[string]string) []clouds.TagProblem {
	var out []clouds.TagProblem
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		v := tags[k]
		bad := func(problem, fix string) { out = append(out, clouds.TagProblem{Key: k, Problem: problem, Fix: fix}) }
		switch {
		case k == "" || utf8.RuneCountInString(k) > maxTagKey:
			bad(fmt.Sprintf("tag key %q has %d characters; AWS tag keys have 1 to %d", k, utf8.RuneCountInString(k), maxTagKey), "shorten the key")
		case strings.HasPrefix(strings.ToLower(k), reservedPrefix):
			bad(fmt.Sprintf("tag key %q starts with %q, which AWS reserves for its own tags", k, reservedPrefix), "rename the key without the aws: prefix")
		case k == "Name":
			bad(`tag key "Name" is the one mixedk8s gives each object its name with`, "use another key, e.g. \"name\" or \"app\"")
		case !tagChars.MatchString(k):
			bad(fmt.Sprintf("tag key %q has characters AWS refuses; keys allow letters, digits, spaces and + - = . _ : / @", k), "replace the other characters, e.g. with '-'")
		}
		switch {
		case utf8.RuneCountInString(v) > maxTagValue:
			bad(fmt.Sprintf("the value of tag %q has %d characters; AWS tag values have at most %d", k, utf8.RuneCountInString(v), maxTagValue), "shorten the value")
		case !tagChars.MatchString(v):
			bad(fmt.Sprintf("the value of tag %q has characters AWS refuses; values allow letters, digits, spaces and + - = . _ : / @", k), "replace the other characters, e.g. with '-'")
		}
	}
	if len(tags) > maxTags-ownTags {
		out = append(out, clouds.TagProblem{Key: slices.Max(slices.Collect(maps.Keys(tags))),
			Problem: fmt.Sprintf("%d tags: an AWS resource carries at most %d, and mixedk8s's own take %d", len(tags), maxTags, ownTags),
			Fix:     fmt.Sprintf("keep at most %d tags", maxTags-ownTags)})
	}
	return out
}
