// Command terraform-provider-mixedk8s serves the mixedk8s Terraform provider.
package main

import (
	"context"
	"embed"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/mixedk8s/mixedk8s/provider"
)

// version is set at release time with -ldflags "-X main.version=...".
var version = "dev"

// agentDigests names the node agents' digest files one by one, so that a
// plain `go build` or `go install` without `make agent-bundle` first fails
// to compile ("pattern ...: no matching files found") instead of making a
// provider that validates but cannot plan. Fix: run `make build`, or
// `make agent-bundle` before `go build`.
//
//go:embed nodeagent/bundle/bin/nodeagent-windows-amd64.exe.sha256
//go:embed nodeagent/bundle/bin/nodeagent-linux-amd64.sha256
//go:embed nodeagent/bundle/bin/nodeagent-linux-arm64.sha256
var agentDigests embed.FS

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve")
	flag.Parse()

	if err := checkAgents(agentDigests, "nodeagent/bundle"); err != nil {
		log.Fatal(err)
	}
	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: "registry.terraform.io/mixedk8s/mixedk8s",
		Debug:   debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}
