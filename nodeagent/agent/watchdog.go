package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// The Windows watchdog: `nodeagent watch` runs as a Windows service and,
// every 30 seconds, puts back what a reboot or a reset of the Host Network
// Service takes away from a configured node: the External HNS network
// (and the routes to the metadata services), flannel's network (flanneld
// makes it again only when it starts), kube-proxy on the network it needs
// at start, and the node's services running. Each pass that changed
// something is kept in the agent's state, which `nodeagent status` prints.
// Calico pools are left to calico-node-windows, which makes its networks
// again itself; Linux nodes have systemd, and flannel runs there as a
// DaemonSet.
const (
	watchdogService = "mixedk8s-watchdog"
	watchdogEvery   = 30 * time.Second
)

// watchdogBinary is the agent copy the watchdog service runs: the
// provisioner pushes the agent again on every apply, which Windows refuses
// while a service runs that file.
func (r *run) watchdogBinary() string { return r.join(r.paths.dir, "watchdog", "nodeagent.exe") }

// planWatchdog installs the watchdog service on its own copy of the agent,
// last, once the node is configured.
func planWatchdog(ctx context.Context, r *run) ([]change, error) {
	self, err := r.files.ReadFile(r.self)
	if err != nil {
		return nil, fmt.Errorf("read the agent %s to install the watchdog: %w; fix: run apply with the agent the provisioner pushed", r.self, err)
	}
	bin := r.watchdogBinary()
	var out []change
	changed := false
	if cur, err := r.files.ReadFile(bin); err != nil || !bytes.Equal(cur, self) {
		changed = true
		out = append(out, change{what: "copy the agent to " + bin + " for the watchdog service", do: func(ctx context.Context) error {
			return r.whileStopped(ctx, []string{bin}, func() error { return r.files.WriteFile(bin, self, oslayer.Executable) })
		}})
	}
	p, a := logRunner(watchdogService, bin, "watch", "--config", r.paths.config)
	svc, err := r.ensureService(ctx, oslayer.ServiceSpec{
		Name: watchdogService, DisplayName: "mixedk8s node watchdog",
		Description: "puts back the node's HNS networks and services after a reboot or an HNS reset (mixedk8s)",
		Path:        p, Args: a, LogFolder: logFolder(watchdogService),
	}, true, changed)
	return append(out, svc...), err
}

func cmdWatch(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("watch", env)
	var mf machineFlags
	mf.register(fs)
	configPath := fs.String("config", "", "")
	once := fs.Bool("once", false, "")
	every := fs.Duration("every", watchdogEvery, "")
	if err := fs.Parse(args); err != nil {
		return contract.ExitUsage
	}
	if *configPath == "" {
		return usageError(env, "watch: --config is required; fix: pass the config the agent keeps (%s)", pathsFor("windows").config)
	}
	if *every < time.Second {
		return usageError(env, "watch: --every %s is too short; fix: use 1s or more", *every)
	}
	raw, err := mf.readConfig(env, *configPath)
	if err != nil {
		return usageError(env, "config: cannot read %s: %v; fix: run apply first, it keeps the config there", *configPath, err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return configProblems(env, err)
	}
	if cfg.Node.OS != "windows" {
		return usageError(env, "watch: node.os is %s; fix: the watchdog runs on Windows nodes only", cfg.Node.OS)
	}
	o, fromFlag, err := mf.machine(env, emulationFor(cfg))
	if err != nil {
		return usageError(env, "%v", err)
	}
	id, err := o.Identity(ctx)
	if err != nil {
		fmt.Fprintf(env.Stderr, "failed to identify the machine: %v\n", err)
		return contract.ExitFailed
	}
	r := newRun(cfg, cfg, o, id, env, fromFlag)
	for {
		code := r.watchOnce(ctx, o)
		if *once {
			return code
		}
		select {
		case <-ctx.Done():
			return contract.ExitOK
		case <-time.After(*every):
		}
	}
}

// watchOnce is one pass, under the apply lock: a pass never runs beside an
// apply (it waits for the next one).
func (r *run) watchOnce(ctx context.Context, o oslayer.OS) int {
	unlock, err := o.Lock(r.join(r.paths.dir, "apply.lock"))
	if err != nil {
		fmt.Fprintf(r.out, "watchdog: an apply runs; checking again later\n")
		return contract.ExitOK
	}
	defer unlock()
	r.loadState()
	if r.state.Phase != contract.NodeReady {
		fmt.Fprintf(r.out, "watchdog: the node is %s, not configured yet; apply does the work\n", r.state.Phase)
		return contract.ExitOK
	}
	did, err := r.repair(ctx)
	w := r.state.Watchdog
	if w == nil {
		w = &contract.Watchdog{}
		r.state.Watchdog = w
	}
	w.LastCheck, w.LastError = r.now().UTC(), ""
	if len(did) > 0 {
		w.Repairs = append(w.Repairs, contract.Repair{Time: w.LastCheck, Changes: did})
		if n := len(w.Repairs) - contract.WatchdogRepairsKept; n > 0 {
			w.Repairs = w.Repairs[n:]
		}
	}
	if err != nil {
		w.LastError = r.redact(err.Error())
	}
	msg := w.LastError
	if serr := r.saveState(); serr != nil && msg == "" {
		msg = serr.Error()
	}
	line, _ := json.Marshal(struct {
		Time    time.Time `json:"time"`
		Changes []string  `json:"changes,omitempty"`
		Error   string    `json:"error,omitempty"`
	}{w.LastCheck, did, msg})
	fmt.Fprintf(r.out, "%s\n", line)
	if msg != "" {
		return contract.ExitFailed
	}
	return contract.ExitOK
}

// repair puts back what is missing and says what it did.
func (r *run) repair(ctx context.Context) ([]string, error) {
	var did []string
	apply := func(changes []change, err error) error {
		if err != nil {
			return err
		}
		for _, c := range changes {
			if err := c.do(ctx); err != nil {
				return fmt.Errorf("failed to %s: %w", c.what, err)
			}
			did = append(did, r.redact(c.what))
		}
		return nil
	}
	flannel := r.cfg.Cluster.CNI == "flannel"
	if flannel {
		// With Calico, calico-node-windows deletes and makes External itself after each boot.
		if err := apply(planExternalNetwork(ctx, r)); err != nil {
			return did, err
		}
	}
	// containerd and the kubelet run again if they stopped; each is installed already.
	for _, name := range []string{"containerd", "kubelet"} {
		if err := apply(r.startIfStopped(ctx, name)); err != nil {
			return did, err
		}
	}
	networkBack := false
	if flannel {
		n, err := r.flannelNetwork(ctx)
		if err != nil {
			return did, err
		}
		if n == nil {
			// flanneld makes its network when it starts (flannel-io/flannel
			// pkg/backend/vxlan/device_windows.go ensureNetwork), not when
			// HNS loses it.
			if err := apply(r.restart(ctx, "flanneld", "HNS network "+hnsNetworkName("flannel")+" is gone")); err != nil {
				return did, err
			}
			if err := apply(planFlannelNetwork(ctx, r)); err != nil {
				return did, err
			}
			networkBack = true
		} else if err := apply(r.startIfStopped(ctx, "flanneld")); err != nil {
			return did, err
		}
		if err := apply(planSourceVIP(ctx, r)); err != nil {
			return did, err
		}
	}
	if networkBack {
		// kube-proxy finds its network at start only.
		if err := apply(r.restart(ctx, "kube-proxy", "its HNS network was made again")); err != nil {
			return did, err
		}
	} else if err := apply(r.startIfStopped(ctx, "kube-proxy")); err != nil {
		return did, err
	}
	return did, nil
}

// startIfStopped plans starting an installed service that does not run.
func (r *run) startIfStopped(ctx context.Context, name string) ([]change, error) {
	st, err := r.services.Service(ctx, name)
	if err != nil || !st.Installed || st.Running {
		return nil, err
	}
	return []change{{what: "start service " + name + " (it had stopped)", do: func(ctx context.Context) error {
		return r.services.StartService(ctx, name, false)
	}}}, nil
}

// restart plans restarting an installed service, with the services that depend on it.
func (r *run) restart(ctx context.Context, name, why string) ([]change, error) {
	st, err := r.services.Service(ctx, name)
	if err != nil || !st.Installed {
		return nil, err
	}
	return []change{{what: "restart service " + name + ": " + why, do: func(ctx context.Context) error {
		return r.restartService(ctx, name)
	}}}, nil
}
