package gcp

import (
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Compute Engine's and Secret Manager's label rules
// (https://cloud.google.com/compute/docs/labeling-resources#requirements):
// at most 64 labels per resource; keys of 1-63 characters starting with a
// lowercase letter, values of 0-63; both only lowercase letters, digits,
// '_' and '-'.
var (
	labelKeyRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	labelValueRE = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
)

const maxLabels = 64

// ownLabels is how many labels of the project's own an instance carries.
const ownLabels = 4

// checkLabels is Profile.CheckTags: the spec's tags become labels as they are.
func checkLabels(tags map[string]string) []clouds.TagProblem {
	var out []clouds.TagProblem
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if !labelKeyRE.MatchString(k) {
			out = append(out, clouds.TagProblem{Key: k,
				Problem: fmt.Sprintf("tag key %q is not a GCP label key: 1-63 lowercase letters, digits, '_' and '-', starting with a letter", k),
				Fix:     fmt.Sprintf("use a key such as %q", labelValue("k" + k)[1:])})
		}
		if v := tags[k]; !labelValueRE.MatchString(v) {
			out = append(out, clouds.TagProblem{Key: k,
				Problem: fmt.Sprintf("the value %q of tag %q is not a GCP label value: at most 63 lowercase letters, digits, '_' and '-'", v, k),
				Fix:     fmt.Sprintf("use a value such as %q", labelValue(v))})
		}
	}
	if len(tags) > maxLabels-ownLabels {
		out = append(out, clouds.TagProblem{Key: slices.Max(slices.Collect(maps.Keys(tags))),
			Problem: fmt.Sprintf("%d tags: a GCP resource carries at most %d labels, and mixedk8s's own take %d", len(tags), maxLabels, ownLabels),
			Fix:     fmt.Sprintf("keep at most %d tags", maxLabels-ownLabels)})
	}
	return out
}

// withLabels adds the user's labels (Config.Labels) to an object's own, which they never replace.
func (c *Cloud) withLabels(own map[string]string) map[string]string {
	for k, v := range c.cfg.Labels {
		if _, taken := own[k]; !taken {
			own[k] = v
		}
	}
	return own
}
