package cluster

import (
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
)

// The support matrix is the one of the Calico release the node agent applies.
func TestCalicoMatrixIsThePinnedRelease(t *testing.T) {
	if !strings.HasPrefix(manifest.CalicoVersion, calicoRelease+".") {
		t.Fatalf("the validator's Calico matrix is for %s, the node agent applies Calico %s; fix: take the matrix of %s from docs.tigera.io", calicoRelease, manifest.CalicoVersion, manifest.CalicoVersion)
	}
}
