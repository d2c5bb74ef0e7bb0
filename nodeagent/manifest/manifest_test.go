package manifest_test

import (
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
)

// Every supported Windows Server version must find a pause image of its
// own build, or no pod sandbox starts there.
func TestPauseImageRunsOnEveryWindowsVersion(t *testing.T) {
	for _, v := range manifest.Versions() {
		c, _ := manifest.ComponentsFor(v)
		for win := range contract.WindowsBuilds {
			if !manifest.PauseRunsOn(c.PauseImage, win) {
				t.Errorf("Kubernetes %s: %s has no image for Windows Server %s", v, c.PauseImage, win)
			}
		}
	}
}
