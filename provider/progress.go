package provider

import (
	"context"
	"regexp"
	"sync"

	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// secretFieldKeys are log field names whose values are always masked.
var secretFieldKeys = []string{
	"kubeconfig", "token", "bootstrap_token", "certificate_key", "private_key", "password", "user_data", "client_key",
}

// secretPatterns mask secrets wherever they appear in a log line or field,
// in case one reaches an error text: library events never carry secrets,
// but a cloud or a node may echo what it was sent.
var secretPatterns = []*regexp.Regexp{
	// kubeadm bootstrap tokens: [a-z0-9]{6}.[a-z0-9]{16}.
	regexp.MustCompile(`\b[a-z0-9]{6}\.[a-z0-9]{16}\b`),
	// PEM private keys of any kind.
	regexp.MustCompile(`(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----`),
	// Bearer tokens and kubeconfig credentials.
	regexp.MustCompile(`(?i)(bearer\s+|token:\s*|client-key-data:\s*|password[=:]\s*)\S+`),
	// kubeadm certificate keys: 64 hex digits.
	regexp.MustCompile(`\b[0-9a-f]{64}\b`),
}

// withLogMasking returns ctx with the provider's masking rules applied to
// every tflog call made with it.
func withLogMasking(ctx context.Context) context.Context {
	ctx = tflog.MaskFieldValuesWithFieldKeys(ctx, secretFieldKeys...)
	ctx = tflog.MaskAllFieldValuesRegexes(ctx, secretPatterns...)
	ctx = tflog.MaskMessageRegexes(ctx, secretPatterns...)
	return ctx
}

// progressLogger returns an Options.Progress function that writes every
// library event to tflog: failures at warn level (Terraform shows them with
// TF_LOG=WARN), steps at info, node phases and retries at debug. It is safe
// to call from the engine's goroutines and returns at once.
func progressLogger(ctx context.Context, clusterName string) func(cluster.Event) {
	ctx = tflog.SetField(withLogMasking(ctx), "cluster", clusterName)
	// Masking rewrites the context's field map in place (terraform-plugin-log
	// v0.11 ApplyMask), so calls that share ctx must not run at once.
	var mu sync.Mutex
	return func(e cluster.Event) {
		mu.Lock()
		defer mu.Unlock()
		fields := map[string]any{"event": string(e.Kind)}
		if e.Step != "" {
			fields["step"] = e.Step
		}
		if e.Node != "" {
			fields["node"] = e.Node
		}
		if e.Attempt > 1 {
			fields["attempt"] = e.Attempt
		}
		if e.Elapsed > 0 {
			fields["elapsed"] = e.Elapsed.String()
		}
		if e.Err != "" {
			fields["error"] = e.Err
		}
		msg := e.String()
		switch e.Kind {
		case cluster.StepFailed, cluster.StepBlocked:
			tflog.Warn(ctx, msg, fields)
		case cluster.StepStarted, cluster.StepFinished:
			tflog.Info(ctx, msg, fields)
		default:
			tflog.Debug(ctx, msg, fields)
		}
	}
}
