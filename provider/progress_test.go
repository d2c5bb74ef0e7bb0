package provider

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-log/tflog"
	"github.com/hashicorp/terraform-plugin-log/tflogtest"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// Progress events go to tflog with their fields, and anything that looks
// like a secret is masked, in the message and in every field.
func TestProgressLogsEventsAndMasksSecrets(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	const (
		token   = "abcdef.0123456789abcdef"
		certKey = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
		pemKey  = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
	)
	progress := progressLogger(ctx, "demo")
	progress(cluster.Event{Kind: cluster.StepStarted, Step: "join/demo-win-0"})
	progress(cluster.Event{Kind: cluster.NodePhase, Node: "demo-win-0", Message: "rebooting"})
	progress(cluster.Event{Kind: cluster.StepFailed, Step: "join/demo-win-0", Err: "kubeadm join --token " + token + " --certificate-key " + certKey + " failed"})
	progress(cluster.Event{Kind: cluster.StepRetrying, Step: "instance/demo-win-1", Attempt: 2, Err: "key " + pemKey})
	tflog.Info(withLogMasking(ctx), "config", map[string]any{"kubeconfig": "apiVersion: v1", "token": "s3cr3t", "bearer": "Bearer xyz.abc"})

	entries, err := tflogtest.MultilineJSONDecode(&out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Fatalf("got %d log entries, want 5:\n%s", len(entries), out.String())
	}
	text := out.String()
	for _, secret := range []string{token, certKey, "b3BlbnNzaC1rZXktdjEAAAAA", "apiVersion: v1", "s3cr3t", "xyz.abc"} {
		if strings.Contains(text, secret) {
			t.Errorf("log holds the secret %q:\n%s", secret, text)
		}
	}
	levels := map[string]string{}
	for _, e := range entries {
		levels[e["@message"].(string)] = e["@level"].(string)
		if e["cluster"] != "demo" && e["@message"] != "config" {
			t.Errorf("entry without the cluster field: %v", e)
		}
	}
	if levels["step-started join/demo-win-0"] != "info" || levels["demo-win-0: rebooting"] != "debug" {
		t.Errorf("levels: %v", levels)
	}
	failed := entries[2]
	if failed["@level"] != "warn" || failed["step"] != "join/demo-win-0" || !strings.Contains(failed["error"].(string), "failed") {
		t.Errorf("failure entry: %v", failed)
	}
}

// The engine reports from many goroutines at once; masking rewrites shared
// field maps, so the logger must serialise (run with -race to see it).
func TestProgressIsSafeFromManyGoroutines(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	ctx = tflog.SetField(ctx, "tf_req_id", "r1")
	progress := progressLogger(ctx, "demo")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				progress(cluster.Event{Kind: cluster.StepFinished, Step: fmt.Sprintf("join/demo-win-%d-%d", g, i)})
			}
		})
	}
	wg.Wait()
	entries, err := tflogtest.MultilineJSONDecode(&out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 400 {
		t.Errorf("got %d entries, want 400", len(entries))
	}
}
