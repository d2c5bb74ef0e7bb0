package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestCalicoManifestsMatchTheirPins(t *testing.T) {
	ms, err := CalicoManifests()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != len(calicoPins) {
		t.Fatalf("got %d manifests for %d pins", len(ms), len(calicoPins))
	}
	for _, m := range ms {
		sum := sha256.Sum256(m.Data)
		if got := hex.EncodeToString(sum[:]); got != calicoPins[m.URL] || got != m.SHA256 {
			t.Errorf("%s hashes to %s; pinned %s", m.URL, got, calicoPins[m.URL])
		}
		if !strings.HasPrefix(m.URL, "https://raw.githubusercontent.com/projectcalico/calico/v"+CalicoVersion+"/manifests/") {
			t.Errorf("%s is not a file of the pinned release", m.URL)
		}
	}
	// CRDs first: the operator and the custom resources need them established.
	if ms[0].Name != "v1_crd_projectcalico_org.yaml" || ms[1].Name != "tigera-operator.yaml" {
		t.Errorf("apply order %s, %s; want the CRDs, then the operator", ms[0].Name, ms[1].Name)
	}
	for _, crd := range []string{"name: installations.operator.tigera.io", "name: ipamconfigs.crd.projectcalico.org", "name: apiservers.operator.tigera.io"} {
		if !bytes.Contains(ms[0].Data, []byte(crd)) {
			t.Errorf("the CRDs lack %q", crd)
		}
	}
	if !bytes.Contains(ms[1].Data, []byte("image: quay.io/tigera/operator:v1.42.3")) {
		t.Errorf("tigera-operator.yaml does not run the operator v1.42.3 that Calico %s ships with (docs.tigera.io releases.json)", CalicoVersion)
	}
}
