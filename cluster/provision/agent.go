package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/transport"
)

// Where the agent and its config live on a node.
const (
	linuxAgent     = "/opt/mixedk8s/bin/nodeagent"
	linuxConfig    = "/etc/mixedk8s/agent.json"
	windowsAgent   = `C:\ProgramData\mixedk8s\bin\nodeagent.exe`
	windowsConfig  = `C:\ProgramData\mixedk8s\agent.json`
	agentArch      = "amd64"
	maxStderrBytes = 8 << 10
)

func agentPaths(os cluster.OS) (agent, config, goos string) {
	if os == cluster.Windows {
		return windowsAgent, windowsConfig, "windows"
	}
	return linuxAgent, linuxConfig, "linux"
}

// agentSessions bounds how often one step runs `apply` on a node: a run cut
// by a dropped connection, or a boot-time resume that failed, is run again
// (apply resumes where the node is), and the last run's failure is reported.
const agentSessions = 3

// runAgent pushes the agent and its config to a node, runs `apply`, streams
// its progress to t.Report, and sees the node through a reboot.
func (p *Provisioner) runAgent(ctx context.Context, t cluster.Target, cfg contract.Config) error {
	var err error
	for session := 1; session <= agentSessions; session++ {
		var rebooting bool
		rebooting, err = p.agentSession(ctx, t, cfg)
		switch {
		case err == nil && !rebooting:
			return nil
		case err == nil:
			var st contract.Status
			st, err = p.awaitAfterReboot(ctx, t)
			if err == nil && st.Phase == contract.NodeReady {
				report(t, "configured after %d reboot(s)", st.Reboots)
				return nil
			}
			if err == nil {
				err = fmt.Errorf("the node agent on %s failed after its reboot: %s", t.Node.Name, st.LastError)
				report(t, "resume at boot failed (%s); running apply again", st.LastError)
			}
		case errors.Is(err, errSessionDropped) && ctx.Err() == nil:
			report(t, "%v; running apply again", err)
		default:
			return err
		}
		if ctx.Err() != nil {
			return err
		}
	}
	return err
}

// errSessionDropped: the connection died while the agent ran and the agent
// had not announced a reboot, so the run was cut short, not finished.
var errSessionDropped = errors.New("the connection dropped while the node agent ran")

// agentSession uploads the agent and its config and runs `apply` once. It
// reports whether the node is rebooting to finish.
func (p *Provisioner) agentSession(ctx context.Context, t cluster.Target, cfg contract.Config) (rebooting bool, err error) {
	agentPath, configPath, goos := agentPaths(t.Node.OS)
	bin, err := p.cfg.Agents(goos, agentArch)
	if err != nil {
		return false, fmt.Errorf("failed to load the node agent for %s/%s: %w", goos, agentArch, err)
	}
	conn, err := p.connect(ctx, t)
	if err != nil {
		return false, fmt.Errorf("failed to connect to %s: %w", t.Node.Name, err)
	}
	defer conn.Close()

	data, err := json.Marshal(cfg)
	if err != nil {
		return false, err
	}
	// The config holds tokens and keys: owner-only from its creation, and
	// first, so on Windows the agent's folder is created protected too.
	if err := conn.Upload(ctx, configPath, bytes.NewReader(data), int64(len(data)), 0o600); err != nil {
		return false, fmt.Errorf("failed to upload the agent config to %s: %w", t.Node.Name, err)
	}
	if err := conn.Upload(ctx, agentPath, bytes.NewReader(bin.Data), int64(len(bin.Data)), 0o755); err != nil {
		return false, fmt.Errorf("failed to upload the node agent to %s: %w", t.Node.Name, err)
	}
	report(t, "agent %s uploaded (sha256 %s)", bin.Name, short(bin.SHA256))

	events := &eventStream{t: t}
	var stderr limitedBuffer
	code, err := conn.Run(ctx, agentPath+" apply --config "+configPath+" --output json", events, &stderr)
	events.flush()
	switch {
	case err == nil && code == contract.ExitRebooting,
		errors.Is(err, transport.ErrRebooting) && events.sawReboot:
		report(t, "rebooting; the agent resumes at boot")
		return true, nil
	case errors.Is(err, transport.ErrRebooting):
		return false, fmt.Errorf("%w on %s: %w", errSessionDropped, t.Node.Name, transport.ErrNotReady)
	case err != nil:
		return false, fmt.Errorf("failed to run the node agent on %s: %w", t.Node.Name, err)
	case code == contract.ExitOK:
		return false, nil
	case code == contract.ExitUsage:
		return false, fmt.Errorf("the node agent on %s refused its config (exit %d): %s", t.Node.Name, code, strings.TrimSpace(stderr.String()))
	}
	return false, events.failure(code, agentPath)
}

// awaitAfterReboot reconnects to a rebooting node and polls the agent's
// status, from every second up to StatusPoll, until it is configured or
// has failed.
func (p *Provisioner) awaitAfterReboot(ctx context.Context, t cluster.Target) (contract.Status, error) {
	timer := time.NewTimer(p.cfg.RebootWait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return contract.Status{}, ctx.Err()
	case <-timer.C:
	}
	poll := time.Second
	for {
		st, err := p.agentStatus(ctx, t)
		switch {
		case err != nil && ctx.Err() != nil:
			return contract.Status{}, fmt.Errorf("waiting for %s to come back from its reboot: %w", t.Node.Name, ctx.Err())
		case errors.Is(err, transport.ErrIdentityMismatch), errors.Is(err, transport.ErrAuth):
			// The node proved its identity and accepted our key before the
			// reboot; anything else now is another machine or a changed one.
			return contract.Status{}, fmt.Errorf("%s after its reboot: %w; fix: check instance %s (%s) was not replaced or tampered with, then apply again", t.Node.Name, err, t.Instance.ID, t.Instance.PrivateIP)
		case err != nil:
			report(t, "not back yet: %v", err)
		case st.Phase == contract.NodeReady || st.Phase == contract.NodeFailed:
			return st, nil
		default:
			report(t, "agent %s (%d steps done)", st.Phase, len(st.StepsDone))
		}
		wait := time.NewTimer(min(poll, p.cfg.StatusPoll))
		poll *= 2
		select {
		case <-ctx.Done():
			wait.Stop()
			return contract.Status{}, fmt.Errorf("waiting for %s to finish after its reboot: %w", t.Node.Name, ctx.Err())
		case <-wait.C:
		}
	}
}

// agentStatus runs `nodeagent status` on a node.
func (p *Provisioner) agentStatus(ctx context.Context, t cluster.Target) (contract.Status, error) {
	conn, err := p.connect(ctx, t)
	if err != nil {
		return contract.Status{}, err
	}
	defer conn.Close()
	agentPath, _, _ := agentPaths(t.Node.OS)
	var out, stderr bytes.Buffer
	code, err := conn.Run(ctx, agentPath+" status", &out, &stderr)
	if err != nil {
		return contract.Status{}, err
	}
	if code != 0 {
		return contract.Status{}, fmt.Errorf("nodeagent status on %s exited %d: %s", t.Node.Name, code, strings.TrimSpace(stderr.String()))
	}
	var st contract.Status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		return contract.Status{}, fmt.Errorf("nodeagent status on %s printed something that is not a status: %w", t.Node.Name, err)
	}
	return st, nil
}

// eventStream turns the agent's JSON lines into node-phase reports and keeps
// the last failure. Lines that are not events are passed on as they are.
type eventStream struct {
	t         cluster.Target
	buf       bytes.Buffer
	lastErr   *contract.Event
	sawReboot bool
}

func (e *eventStream) Write(b []byte) (int, error) {
	e.buf.Write(b)
	for {
		line, err := e.buf.ReadBytes('\n')
		if err == io.EOF {
			e.buf.Write(line)
			return len(b), nil
		}
		e.line(line)
	}
}

func (e *eventStream) flush() {
	if e.buf.Len() > 0 {
		e.line(e.buf.Bytes())
		e.buf.Reset()
	}
}

func (e *eventStream) line(line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	var ev contract.Event
	if json.Unmarshal(line, &ev) != nil || ev.Step == "" {
		report(e.t, "%s", line)
		return
	}
	msg := ev.Step + " " + string(ev.Phase)
	if ev.Message != "" {
		msg += ": " + ev.Message
	}
	if ev.Error != "" {
		msg += ": " + ev.Error
	}
	switch ev.Phase {
	case contract.PhaseFailed:
		e.lastErr = &ev
	case contract.PhaseReboot:
		e.sawReboot = true
	}
	report(e.t, "%s", msg)
}

func (e *eventStream) failure(code int, agentPath string) error {
	where := ""
	if e.lastErr != nil {
		where = fmt.Sprintf(" at step %s: %s", e.lastErr.Step, e.lastErr.Error)
	}
	return fmt.Errorf("the node agent on %s failed (exit %d)%s; fix: run `%s diagnose --out diag.tar.gz` on the node and read its agent log", e.t.Node.Name, code, where, agentPath)
}

// limitedBuffer keeps the first few KB of stderr for error messages.
type limitedBuffer struct{ bytes.Buffer }

func (l *limitedBuffer) Write(b []byte) (int, error) {
	if room := maxStderrBytes - l.Len(); room > 0 {
		l.Buffer.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

func report(t cluster.Target, format string, args ...any) {
	if t.Report != nil {
		t.Report(fmt.Sprintf(format, args...))
	}
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}
