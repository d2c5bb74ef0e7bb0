package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// A minor resolves to the newest release this build pins, the state records
// it, and a later plan keeps it while the configuration names that minor:
// a provider that knows a newer patch moves no cluster.
func TestAMinorKeepsTheRecordedRelease(t *testing.T) {
	t.Parallel()
	str := types.StringValue
	state := func(version, release string) *clusterModel {
		m := &clusterModel{KubernetesVersion: str(version), KubernetesRelease: types.StringNull()}
		if release != "" {
			m.KubernetesRelease = str(release)
		}
		return m
	}
	for _, c := range []struct {
		name    string
		version string
		state   *clusterModel
		want    string
	}{
		{"a new cluster on a minor gets its newest pinned release", "1.36", nil, "1.36.4"},
		{"a new cluster on a release gets that release", "1.35.8", nil, "1.35.8"},
		{"a minor keeps the release recorded at creation", "1.36", state("1.36", "1.36.3"), "1.36.3"},
		{"a minor written over a release of it keeps that release", "1.36", state("1.36.2", "1.36.2"), "1.36.2"},
		{"another minor resolves again", "1.35", state("1.36", "1.36.3"), "1.35.8"},
		{"a release replaces the recorded one", "1.36.4", state("1.36", "1.36.3"), "1.36.4"},
		{"a state from before the attribute resolves its version", "1.36.3", state("1.36.3", ""), "1.36.3"},
	} {
		if got := plannedRelease(str(c.version), c.state); got.ValueString() != c.want {
			t.Errorf("%s: plannedRelease(%q) = %s, want %q", c.name, c.version, got, c.want)
		}
	}
	if got := plannedRelease(types.StringUnknown(), nil); !got.IsUnknown() {
		t.Errorf("an unknown version plans a known release %s", got)
	}
}

// The skew check compares releases: naming the minor of the running
// release changes nothing, a newer patch is an upgrade, an older release is
// refused as a downgrade.
func TestVersionChangesAreJudgedByRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	str := types.StringValue
	prior := clusterModel{KubernetesVersion: str("1.36.3"), KubernetesRelease: str("1.36.3"), NodePools: types.MapNull(poolType)}
	for version, refused := range map[string]bool{"1.36": false, "1.36.3": false, "1.36.4": false, "1.35": true, "1.35.8": true} {
		plan := clusterModel{KubernetesVersion: str(version), NodePools: types.MapNull(poolType)}
		plan.KubernetesRelease = plannedRelease(plan.KubernetesVersion, &prior)
		var diags diag.Diagnostics
		checkUnsupportedChanges(ctx, prior, plan, cluster.Spec{Name: "demo"}, &diags)
		if diags.HasError() != refused {
			t.Errorf("kubernetes_version %q on a cluster at 1.36.3: refused=%v, want %v (%v)", version, diags.HasError(), refused, diags)
		}
		if refused && !strings.Contains(diags.Errors()[0].Detail(), "runs Kubernetes 1.36.3") {
			t.Errorf("kubernetes_version %q: the refusal does not name the running release: %v", version, diags)
		}
	}
	// A state written before kubernetes_release existed is judged by its version.
	old := clusterModel{KubernetesVersion: str("1.36.3"), KubernetesRelease: types.StringNull(), NodePools: types.MapNull(poolType)}
	plan := clusterModel{KubernetesVersion: str("1.36.3"), NodePools: types.MapNull(poolType)}
	plan.KubernetesRelease = plannedRelease(plan.KubernetesVersion, &old)
	var diags diag.Diagnostics
	if checkUnsupportedChanges(ctx, old, plan, cluster.Spec{Name: "demo"}, &diags); diags.HasError() {
		t.Errorf("an unchanged version on an old state is refused: %v", diags)
	}
}
