package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// State is what the agent keeps on the node between runs (never secrets).
type State struct {
	contract.Status
	// Installed records each artifact put in place: name -> version, origin URL and digest.
	Installed map[string]Installed `json:"installed,omitempty"`
	// Markers fingerprint the inputs of steps whose effect the OS cannot show (kubeadm init, kubectl apply).
	Markers map[string]string `json:"markers,omitempty"`
}

// Installed is one artifact put in place.
type Installed struct {
	Version string `json:"version"`
	URL     string `json:"url"`
	SHA256  string `json:"sha256"`
}

// step is one thing a node needs, planned by observing the machine.
type step struct {
	name string
	// plan returns the changes still needed; none means the step is in place.
	plan func(ctx context.Context, r *run) ([]change, error)
}

// change is one effect of a step; what never holds secrets.
type change struct {
	what string
	do   func(ctx context.Context) error
	// reboot: after this change the node reboots and the agent exits with ExitRebooting.
	reboot bool
}

// run is one apply: the config, the machine's roles, where events go and
// what changed so far. Each role is the same OS; a step reaches only the
// roles it names.
type run struct {
	cfg      contract.Config
	keep     contract.Config
	files    oslayer.Files
	fetcher  oslayer.Fetcher
	commands oslayer.Commands
	services oslayer.Services
	windows  oslayer.WindowsHost
	linux    oslayer.LinuxHost
	boot     oslayer.Boot
	id       oslayer.Identity
	paths    paths
	state    *State
	out      io.Writer
	json     bool
	dryRun   bool
	now      func() time.Time
	secrets  []string
	log      bytes.Buffer
	// self is the agent binary the node runs again at boot.
	self string
	// before is the Kubernetes release the node ran before this apply (setUpAt).
	before string
}

func (r *run) redact(s string) string {
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}

func (r *run) emit(e contract.Event) {
	e.APIVersion = contract.APIVersion
	e.Time = r.now().UTC()
	e.Node = r.cfg.Node.Name
	e.Message = r.redact(e.Message)
	e.Error = r.redact(e.Error)
	for i := range e.Changes {
		e.Changes[i] = r.redact(e.Changes[i])
	}
	line, _ := json.Marshal(e)
	r.log.Write(append(line, '\n'))
	if r.json {
		fmt.Fprintf(r.out, "%s\n", line)
		return
	}
	fmt.Fprintf(r.out, "%-8s %-22s", e.Phase, e.Step)
	if e.Message != "" {
		fmt.Fprintf(r.out, " %s", e.Message)
	}
	if e.Error != "" {
		fmt.Fprintf(r.out, " error: %s", e.Error)
	}
	fmt.Fprintln(r.out)
	for _, c := range e.Changes {
		fmt.Fprintf(r.out, "         - %s\n", c)
	}
}

// fingerprint hashes a step's inputs for its marker.
func fingerprint(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func (r *run) loadState() {
	r.state = &State{}
	if data, err := r.files.ReadFile(r.paths.state); err == nil {
		_ = json.Unmarshal(data, r.state)
	}
	if r.state.Installed == nil {
		r.state.Installed = map[string]Installed{}
	}
	if r.state.Markers == nil {
		r.state.Markers = map[string]string{}
	}
	if r.state.Versions == nil {
		r.state.Versions = map[string]string{}
	}
	if r.state.Phase == "" {
		r.state.Phase = contract.NodeNew
	}
}

func (r *run) saveState() error {
	if r.dryRun {
		return nil
	}
	r.state.APIVersion = contract.APIVersion
	r.state.Node = r.cfg.Node.Name
	r.state.UpdatedAt = r.now().UTC()
	r.state.Versions["agent"] = Version
	data, _ := json.MarshalIndent(r.state, "", "  ")
	if err := r.files.WriteFile(r.paths.state, data, oslayer.Public); err != nil {
		return fmt.Errorf("failed to save the agent state %s: %w", r.paths.state, err)
	}
	return nil
}

// flushLog appends this run's events to the agent log on the node.
func (r *run) flushLog() {
	if r.dryRun || r.log.Len() == 0 {
		return
	}
	old, _ := r.files.ReadFile(r.paths.log)
	if len(old) > 4<<20 {
		old = old[len(old)-2<<20:]
	}
	_ = r.files.WriteFile(r.paths.log, append(old, r.log.Bytes()...), oslayer.Public)
}

func (r *run) markDone(name string) {
	for _, s := range r.state.StepsDone {
		if s == name {
			return
		}
	}
	r.state.StepsDone = append(r.state.StepsDone, name)
}

// execute plans and applies steps in order and returns the exit code.
func (r *run) execute(ctx context.Context, steps []step) int {
	defer r.flushLog()
	if !r.dryRun {
		r.state.Phase = contract.NodeApplying
		r.state.LastError = ""
	}
	fail := func(name string, err error) int {
		msg := r.redact(err.Error())
		r.emit(contract.Event{Step: name, Phase: contract.PhaseFailed, Error: msg})
		if !r.dryRun {
			r.state.Phase = contract.NodeFailed
			r.state.LastError = name + ": " + msg
			_ = r.saveState()
		}
		return contract.ExitFailed
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return fail(s.name, fmt.Errorf("interrupted before this step: %w; fix: run apply again, it resumes here", err))
		}
		changes, err := s.plan(ctx, r)
		if err != nil {
			return fail(s.name, err)
		}
		if len(changes) == 0 {
			r.emit(contract.Event{Step: s.name, Phase: contract.PhaseSkipped, Message: "already in place"})
			if !r.dryRun {
				r.markDone(s.name)
			}
			continue
		}
		var whats []string
		for _, c := range changes {
			whats = append(whats, c.what)
		}
		if r.dryRun {
			r.emit(contract.Event{Step: s.name, Phase: contract.PhasePlanned, Changes: whats})
			continue
		}
		r.emit(contract.Event{Step: s.name, Phase: contract.PhaseStarted, Changes: whats})
		for _, c := range changes {
			if err := ctx.Err(); err != nil {
				return fail(s.name, fmt.Errorf("interrupted: %w; fix: run apply again, it resumes here", err))
			}
			if err := c.do(ctx); err != nil {
				return fail(s.name, fmt.Errorf("failed to %s: %w", c.what, err))
			}
			if c.reboot {
				r.state.Phase = contract.NodeRebooting
				r.state.Reboots++
				if err := r.saveState(); err != nil {
					return fail(s.name, err)
				}
				r.emit(contract.Event{Step: s.name, Phase: contract.PhaseReboot, Message: "rebooting; the agent resumes at boot", Changes: whats})
				return contract.ExitRebooting
			}
		}
		r.markDone(s.name)
		if err := r.saveState(); err != nil {
			return fail(s.name, err)
		}
		r.emit(contract.Event{Step: s.name, Phase: contract.PhaseDone, Changes: whats})
	}
	if r.dryRun {
		return contract.ExitOK
	}
	r.state.Phase = contract.NodeReady
	if err := r.saveState(); err != nil {
		return fail("finish", err)
	}
	return contract.ExitOK
}
