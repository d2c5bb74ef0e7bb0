package main

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
)

// checkAgents refuses to serve when the embedded agents are not the ones
// whose digests the build named: a bundle rebuilt between the two embeds
// would push agents nobody tested with this provider.
func checkAgents(digests fs.FS, dir string) error {
	for _, p := range bundle.Platforms {
		agent, err := bundle.Agent(p.GOOS, p.GOARCH)
		if err != nil {
			return err
		}
		file := path.Join(dir, bundle.DigestFile(p.GOOS, p.GOARCH))
		data, err := fs.ReadFile(digests, file)
		if err != nil {
			return fmt.Errorf("node agent digest %s is not in this build; fix: run `make build` (it runs `make agent-bundle` first)", file)
		}
		if f := strings.Fields(string(data)); len(f) == 0 || f[0] != agent.SHA256 {
			return fmt.Errorf("node agent for %s/%s in this build has SHA-256 %s, not the digest %s names; fix: run `make build` again", p.GOOS, p.GOARCH, agent.SHA256, file)
		}
	}
	return nil
}
