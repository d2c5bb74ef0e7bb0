// Command lab runs the mixedk8s lab (package test/lab) until SIGINT or
// SIGTERM: the EC2+SSM emulator, the bastion, the artifact mirror and a
// virtual node for every running instance, and for every cluster a real
// control plane and hollow kubelets (built by `make lab-bins`), all on
// 127.0.0.1.
//
//	go run ./test/lab/cmd/lab [--dir DIR] [--region REGION] [--clouds azure,gcp] [--pending-delay D] [-v]
//
// --clouds starts the ARM emulator (with Entra ID and Key Vault) and the
// Compute Engine emulator (with Secret Manager) beside EC2; their
// endpoints and credentials go into the env file too.
//
// It prints the path of the env file (lab.env in DIR; default
// $MIXEDK8S_LAB_DIR or ./.lab) on the first line and a one-line summary on
// the second, then logs nodes as instances start and stop. On exit it
// removes the env files, so a stale lab is never used by mistake.
// hack/lab.sh runs it in the background.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mixedk8s/mixedk8s/test/lab"
	"github.com/mixedk8s/mixedk8s/test/lab/azurelab"
	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
	"github.com/mixedk8s/mixedk8s/test/lab/gcelab"
)

func main() {
	defaultDir := os.Getenv("MIXEDK8S_LAB_DIR")
	if defaultDir == "" {
		defaultDir = ".lab"
	}
	dir := flag.String("dir", defaultDir, "lab folder: env files, CA bundle, bastion key, node sandboxes")
	region := flag.String("region", "us-east-1", "region the EC2 emulator answers for")
	pending := flag.Duration("pending-delay", time.Second, "how long instances stay pending (and shutting-down)")
	verbose := flag.Bool("v", false, "log every emulated API request")
	extra := flag.String("clouds", "", "other clouds to emulate beside EC2, comma-separated: azure, gcp")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "lab: unexpected arguments %q; usage: lab [--dir DIR] [--region REGION] [--clouds azure,gcp] [--pending-delay D] [-v]\n", flag.Args())
		os.Exit(2)
	}
	starters, err := cloudStarters(*extra)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(2)
	}
	logger := log.New(os.Stderr, "lab: ", log.LstdFlags)
	// Without them every cluster would stop at kubeadm init; say so now.
	if err := lab.CheckBinaries(); err != nil {
		logger.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := lab.Config{Dir: *dir, Region: *region, PendingDelay: *pending, ShuttingDownDelay: *pending, Logf: logger.Printf, Clouds: starters}
	if *verbose {
		cfg.APILogf = logger.Printf
	}
	l, err := lab.Start(ctx, cfg)
	if err != nil {
		logger.Fatal(err)
	}
	env := l.Env()
	fmt.Println(l.EnvFile())
	fmt.Printf("lab up: EC2+SSM %s (%s)%s, bastion %s as %s, mirror %s, API %s; stop with Ctrl-C or SIGTERM\n",
		env.AWSEndpoint, env.AWSRegion, otherClouds(l, *extra), env.BastionAddress, env.BastionUser, env.MirrorBaseURL, env.API)

	<-ctx.Done()
	logger.Print("stopping")
	l.Close()
	for _, name := range []string{lab.EnvFileName, lab.JSONFileName} {
		_ = os.Remove(filepath.Join(env.Dir, name))
	}
	logger.Print("stopped")
}

// cloudStarters starts the emulators --clouds names, each with credentials
// made for this run (the env file, owner-only, carries them).
func cloudStarters(list string) ([]cloudemu.Starter, error) {
	var out []cloudemu.Starter
	for _, name := range strings.Split(list, ",") {
		switch strings.TrimSpace(name) {
		case "":
		case "aws":
			// Always running.
		case "azure":
			out = append(out, azurelab.Starter(azurelab.Options{ClientID: "mixedk8s-lab", ClientSecret: rand.Text()}))
		case "gcp":
			out = append(out, gcelab.Starter(gcelab.Options{Token: rand.Text()}))
		default:
			return nil, fmt.Errorf("--clouds names %q; fix: list azure and/or gcp (EC2 always runs)", name)
		}
	}
	return out, nil
}

// otherClouds names the emulators that run beside EC2, for the summary line;
// their endpoints are in the env file.
func otherClouds(l *lab.Lab, list string) string {
	var out string
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name != "aws" && l.Emulator(name) != nil {
			out += ", " + name
		}
	}
	return out
}
