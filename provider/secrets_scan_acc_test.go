package provider_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mixedk8s/mixedk8s/clouds"
	awscloud "github.com/mixedk8s/mixedk8s/clouds/aws"
	"github.com/mixedk8s/mixedk8s/internal/secretscan"
	"github.com/mixedk8s/mixedk8s/provider"
	"github.com/mixedk8s/mixedk8s/test/lab"
)

// An Apply, a failed Apply, a refused plan, a rotation of the node
// identities (after which what each node held before opens it no more) and
// a Destroy, driven by the real CLI against the lab with
// TF_LOG=TRACE, leave none of the cluster's secrets in anything they print
// or log: the CLI's and the provider's trace log and every command's output
// and errors. The secrets are read from where they live (the cloud's
// secret store, each node's disk and first-boot data, the cluster's
// bootstrap tokens) and looked for as they are, in base64 and in hex; any
// private key in PEM form is a hit too. A hit names the secret and where it
// was found, never the value.
func TestAccLabSecretsStayOutOfLogs(t *testing.T) {
	real := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if os.Getenv("TF_ACC") != "" && real == "" {
		t.Skip("acceptance test: set TF_ACC_TERRAFORM_PATH to a terraform or tofu CLI (make testacc does)")
	}
	dir := t.TempDir()
	if os.Getenv("TF_ACC") != "" {
		t.Setenv("TF_LOG", "TRACE")
		t.Setenv("TF_ACC_LOG", "TRACE")
		t.Setenv("TF_ACC_LOG_PATH", filepath.Join(dir, "trace.log"))
		t.Setenv("TF_ACC_TERRAFORM_PATH", outputRecorder(t, dir, real))
	}
	l := startLab(t)
	env := l.Env()
	ctx := context.Background()
	secrets := &secretSet{}
	epoch0 := map[string]clouds.NodeIdentity{}
	factories := map[string]func() (tfprotov6.ProviderServer, error){
		"mixedk8s": providerserver.NewProtocol6WithError(provider.New("test")()),
	}
	withEpoch := func(cfg string, epoch int) string {
		return strings.Replace(cfg, `tags      = {`, fmt.Sprintf("secrets_epoch = %d\n  tags      = {", epoch), 1)
	}
	cfg := labConfig(env, labAssumeRole(t, l, "acc-external-id"), 1, 1)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             labEmpty(l),
		Steps: []resource.TestStep{
			{
				// The secret store refuses writes: the apply fails, and says so.
				PreConfig: func() {
					if err := l.Inject(lab.Fault{Kind: lab.FaultDeny, Action: "PutParameter"}); err != nil {
						t.Fatal(err)
					}
				},
				Config:      cfg,
				ExpectError: regexp.MustCompile(`(?s)PutParameter|not authorized|UnauthorizedOperation`),
			},
			{
				PreConfig: func() { l.ClearFaults() },
				Config:    cfg,
				Check: resource.ComposeAggregateTestCheckFunc(
					secrets.collect(ctx, t, l, env),
					func(*terraform.State) error {
						for _, n := range l.Nodes("acc") {
							a := n.Sandbox.Access()
							epoch0[n.Name] = clouds.NodeIdentity{AdminUser: "mixedk8s", SSHHostKeyPEM: a.SSHHostKeyPEM, WinRMCertPEM: a.WinRMCertPEM, AdminPassword: a.Passwords["mixedk8s"]}
						}
						return nil
					},
				),
			},
			{
				Config: withEpoch(cfg, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(labAddr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(labAddr, "secrets_epoch", "1"),
					secrets.collect(ctx, t, l, env),
					// What each node held at epoch 0 opens it no more.
					func(*terraform.State) error {
						if len(epoch0) != 3 {
							return fmt.Errorf("epoch 0's identities of %d nodes recorded, want 3", len(epoch0))
						}
						for name, id := range epoch0 {
							n := l.Node(name)
							if n == nil {
								return fmt.Errorf("%s is gone: the rotation replaced it instead of rotating in place", name)
							}
							short, cancel := context.WithTimeout(ctx, 10*time.Second)
							open, err := n.StillOpens(short, id)
							cancel()
							if err != nil {
								return fmt.Errorf("%s: %w", name, err)
							}
							if len(open) > 0 {
								return fmt.Errorf("%s after the rotation, epoch 0's identity: %s", name, strings.Join(open, "; "))
							}
						}
						return nil
					},
				),
			},
			{
				// Going back to an epoch the rotation retired is refused at plan time.
				Config:      withEpoch(cfg, 0),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Invalid secrets_epoch`),
			},
		},
	})
	if t.Failed() {
		return
	}
	if secrets.Len() < 8 {
		t.Fatalf("only %d secrets collected; the scan would prove little", secrets.Len())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	scanned := 0
	for _, f := range files {
		for _, hit := range secrets.scan(t, f) {
			t.Error(hit)
		}
		if st, err := os.Stat(f); err == nil {
			scanned += int(st.Size())
		}
	}
	if scanned < 1<<20 {
		t.Errorf("only %d bytes of output scanned in %v; want the trace logs of every command", scanned, files)
	}
	t.Logf("scanned %d bytes in %d files for %d secrets", scanned, len(files), secrets.Len())
}

// outputRecorder writes a CLI wrapper that appends each command's stdout
// and stderr to files in dir and runs the real CLI. `show` is not
// recorded: the test framework reads state with it, and state holds the
// kubeconfig by design (the resource's documentation says so).
func outputRecorder(t *testing.T, dir, real string) string {
	t.Helper()
	script := fmt.Sprintf(`#!/bin/bash
if [ "$1" = show ]; then exec %[1]q "$@"; fi
exec > >(tee -a %[2]q) 2> >(tee -a %[3]q >&2)
exec %[1]q "$@"
`, real, filepath.Join(dir, "stdout.log"), filepath.Join(dir, "stderr.log"))
	path := filepath.Join(dir, "terraform")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// secretSet is every secret of the cluster, by what it is.
type secretSet struct{ secretscan.Set }

// collect reads the cluster's secrets from where they live.
func (s *secretSet) collect(ctx context.Context, t *testing.T, l *lab.Lab, env lab.Env) resource.TestCheckFunc {
	return func(st *terraform.State) error {
		cloud, err := awscloud.New(ctx, awscloud.Config{Region: env.AWSRegion, Endpoint: env.AWSEndpoint, CABundle: mustRead(t, env.AWSCABundle),
			AccessKeyID: env.AWSAccessKeyID, SecretAccessKey: env.AWSSecretAccessKey, MaxAttempts: 3})
		if err != nil {
			return err
		}
		names := []clouds.SecretName{"seed", "ca", "init-token", "certificate-key"}
		for _, n := range l.Nodes("acc") {
			for _, kind := range []string{"winrm", "winrm-lasting"} {
				base := clouds.NewSecretName("node", n.Name, kind)
				names = append(names, base, clouds.NewSecretName(string(base), "e1"))
			}
			boot := n.FirstBoot
			s.AddPEM(n.Name+"'s first-boot host key", []byte(boot.SSHHostKeyPEM))
			s.AddPEM(n.Name+"'s first-boot WinRM key", []byte(boot.WinRMKeyPEM))
			s.Add(n.Name+"'s first-boot admin password", []byte(boot.AdminPassword))
			a := n.Sandbox.Access()
			s.AddPEM(n.Name+"'s host key", []byte(a.SSHHostKeyPEM))
			s.AddPEM(n.Name+"'s WinRM key", []byte(a.WinRMKeyPEM))
			for user, pw := range a.Passwords {
				s.Add(n.Name+"'s password of "+user, []byte(pw))
			}
		}
		found := 0
		for _, name := range names {
			v, ok, err := cloud.Secret(ctx, "acc", name)
			if err != nil {
				return fmt.Errorf("read secret %s: %w", name, err)
			}
			if !ok {
				continue
			}
			found++
			if bytes.Contains(v, []byte("-----BEGIN")) {
				s.AddPEM("the stored secret "+string(name), v)
			} else {
				s.Add("the stored secret "+string(name), v)
			}
		}
		if found < 4 {
			return fmt.Errorf("only %d of the cluster's stored secrets found", found)
		}
		return s.bootstrapTokens(ctx, l, st)
	}
}

// bootstrapTokens adds the cluster's bootstrap tokens, read from its API
// server with the kubeconfig in state.
func (s *secretSet) bootstrapTokens(ctx context.Context, l *lab.Lab, st *terraform.State) error {
	rs, ok := st.RootModule().Resources[labAddr]
	if !ok {
		return fmt.Errorf("%s is not in state", labAddr)
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig([]byte(rs.Primary.Attributes["kubeconfig"]))
	if err != nil {
		return err
	}
	rc.Dial = func(ctx context.Context, _, addr string) (net.Conn, error) { return l.DialLab(ctx, addr) }
	rc.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	list, err := cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "type=bootstrap.kubernetes.io/token"})
	if err != nil {
		return fmt.Errorf("list the bootstrap tokens: %w", err)
	}
	if len(list.Items) == 0 {
		return fmt.Errorf("the cluster has no bootstrap token")
	}
	for _, sec := range list.Items {
		id, secret := string(sec.Data["token-id"]), string(sec.Data["token-secret"])
		s.Add("bootstrap token "+id, []byte(id+"."+secret))
		s.Add("the secret of bootstrap token "+id, []byte(secret))
	}
	return nil
}

// scan returns one line per secret found in a file: what it is, and where.
func (s *secretSet) scan(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hits, err := s.Scan(filepath.Base(file), f)
	if err != nil {
		t.Fatalf("scan %s: %v", file, err)
	}
	return hits
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
