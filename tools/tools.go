//go:build tools

// Package tools pins the code generators the provider's docs are built
// with, in a module of their own so they stay out of the main go.mod.
// `go run github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs` in
// this directory runs the pinned version (see hack/docs.sh).
package tools

import (
	_ "github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs"
)
