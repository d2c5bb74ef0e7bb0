// Command nodeagent turns a fresh Windows Server or Linux VM into a
// Kubernetes node; see package nodeagent/agent.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mixedk8s/mixedk8s/nodeagent/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := agent.Main(ctx, os.Args[1:], agent.Env{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
