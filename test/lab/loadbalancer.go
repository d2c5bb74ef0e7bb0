package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
	"github.com/mixedk8s/mixedk8s/test/lab/host"
)

// The lab's load balancers. Every load balancer an emulator reports gets a
// virtual host in the lab network (its private addresses and DNS names
// resolve to it, through the bastion as well) and, per listener, a port on
// 127.0.0.1 for clients on this machine. Each new connection goes to one
// target in rotation, dialled on its target port; the connection fails if
// that target does not answer, as a layer-4 load balancer's does.
//
// Targets are probed as the cloud probes them (a TCP connection to the
// health-check port every interval; Healthy passes in a row put a target in
// rotation, Unhealthy failures take it out), with the cloud's interval
// divided by Config.HealthCheckSpeedup. While no target is healthy, every
// target is in rotation where the cloud fails open, as ELB does
// (network/target-group-health-checks.html, "If all targets fail health
// checks at the same time ... the load balancer fails open"), and none is
// where it fails closed, as Azure Load Balancer does by default
// (https://learn.microsoft.com/azure/load-balancer/load-balancer-custom-probe-overview,
// "Probe down behavior").

// defaultHealthCheckSpeedup divides the clouds' health-check intervals.
const defaultHealthCheckSpeedup = 10

// lbVirtualBase is where load balancers' virtual addresses start: 127.250.x.y
// and up; nodes keep below it (virtualAddr).
const lbVirtualBase = 250

type balancers struct {
	mu     sync.Mutex
	fronts map[string]*front // by cloud + "/" + ID
	closed bool
}

// front is one load balancer as the lab carries it.
type front struct {
	lb      cloudemu.LoadBalancer
	host    *host.Host
	private []netip.Addr
	pools   map[int]*pool        // by listener port
	locals  map[int]net.Listener // by listener port: 127.0.0.1 for this machine
}

// pool is one listener's targets and their health.
type pool struct {
	l          *Lab
	mu         sync.Mutex
	targetPort int
	health     cloudemu.HealthCheck
	targets    []string
	probes     map[string]*probe
	next       int
	stop       chan struct{}
	wg         sync.WaitGroup
}

type probe struct {
	passes, fails int
	healthy       bool
}

func newBalancers() *balancers { return &balancers{fronts: map[string]*front{}} }

// onLoadBalancer is the lab's side of the emulators' load balancer reports.
func (l *Lab) onLoadBalancer(lb cloudemu.LoadBalancer) {
	b := l.lbs
	key := lb.Cloud + "/" + lb.ID
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	f := b.fronts[key]
	if lb.Deleted {
		if f != nil {
			f.close()
			delete(b.fronts, key)
			l.cfg.Logf("load balancer %s of cluster %s deleted", lb.ID, lb.Cluster)
		}
		return
	}
	if f == nil {
		var err error
		if f, err = l.newFront(lb); err != nil {
			l.problem("load balancer %s: %v", lb.ID, err)
			return
		}
		b.fronts[key] = f
		l.cfg.Logf("load balancer %s of cluster %s up: %s, virtual %s", lb.ID, lb.Cluster, strings.Join(append(slices.Clone(lb.Names), lb.Addresses...), ", "), f.host.Addr)
	}
	f.lb = lb.Clone()
	seen := map[int]bool{}
	for _, ls := range lb.Listeners {
		seen[ls.Port] = true
		p := f.pools[ls.Port]
		if p == nil {
			p = &pool{l: l, probes: map[string]*probe{}, stop: make(chan struct{})}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				l.problem("load balancer %s: listen on 127.0.0.1 for port %d: %v", lb.ID, ls.Port, err)
				continue
			}
			f.pools[ls.Port], f.locals[ls.Port] = p, ln
			f.host.Listen(ls.Port, p.serve)
			go acceptLoop(ln, p.serve)
			p.wg.Add(1)
			go p.check()
		}
		p.update(ls)
	}
	for port, p := range f.pools {
		if !seen[port] {
			f.host.Listen(port, nil)
			_ = f.locals[port].Close()
			p.close()
			delete(f.pools, port)
			delete(f.locals, port)
		}
	}
}

// newFront gives a load balancer its virtual host. Called with b.mu held.
func (l *Lab) newFront(lb cloudemu.LoadBalancer) (*front, error) {
	var private []netip.Addr
	for _, a := range lb.Addresses {
		ip, err := netip.ParseAddr(a)
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("address %q is not IPv4", a)
		}
		private = append(private, ip)
	}
	if len(private) == 0 {
		return nil, fmt.Errorf("it reports no address")
	}
	addr, err := l.lbVirtualAddr(private[0])
	if err != nil {
		return nil, err
	}
	name := "lb-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(lb.ID[max(0, len(lb.ID)-24):]))
	h, err := host.New(name, host.Linux, addr, filepath.Join(l.cfg.Dir, "loadbalancers", name))
	if err != nil {
		return nil, err
	}
	return &front{lb: lb, host: h, private: private, pools: map[int]*pool{}, locals: map[int]net.Listener{}}, nil
}

// lbVirtualAddr derives 127.250.x.y from a private address 10.a.x.y,
// moving to 127.251.x.y and on when another load balancer holds it.
// Called with b.mu held.
func (l *Lab) lbVirtualAddr(priv netip.Addr) (netip.Addr, error) {
	b := priv.As4()
	for second := lbVirtualBase; second < 255; second++ {
		a := netip.AddrFrom4([4]byte{127, byte(second), b[2], b[3]})
		taken := false
		for _, f := range l.lbs.fronts {
			taken = taken || f.host.Addr == a
		}
		if !taken {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free virtual address for %s", priv)
}

func (f *front) close() {
	for port, p := range f.pools {
		f.host.Listen(port, nil)
		_ = f.locals[port].Close()
		p.close()
	}
	f.host.Reboot() // drops the connections it carries
}

func acceptLoop(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go serve(c)
	}
}

func (p *pool) update(ls cloudemu.Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.targetPort, p.health, p.targets = ls.TargetPort, ls.Health, slices.Clone(ls.Targets)
	for id := range p.probes {
		if !slices.Contains(p.targets, id) {
			delete(p.probes, id)
		}
	}
	for _, id := range p.targets {
		if p.probes[id] == nil {
			p.probes[id] = &probe{} // "initial" until it passes Healthy checks
		}
	}
}

func (p *pool) close() {
	close(p.stop)
	p.wg.Wait()
}

// check probes the targets every (scaled) interval until the pool closes.
func (p *pool) check() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		every := p.health.Interval / time.Duration(p.l.healthSpeedup())
		p.mu.Unlock()
		every = max(every, 10*time.Millisecond)
		t := time.NewTimer(every)
		select {
		case <-p.stop:
			t.Stop()
			return
		case <-t.C:
		}
		p.probeAll()
	}
}

func (p *pool) probeAll() {
	p.mu.Lock()
	port := p.health.Port
	if port == 0 {
		port = p.targetPort
	}
	ids := slices.Clone(p.targets)
	p.mu.Unlock()
	results := map[string]bool{}
	for _, id := range ids {
		results[id] = p.l.accepts(id, port)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, ok := range results {
		pr := p.probes[id]
		if pr == nil {
			continue
		}
		if ok {
			pr.passes, pr.fails = pr.passes+1, 0
			if pr.passes >= max(p.health.Healthy, 1) {
				pr.healthy = true
			}
		} else {
			pr.passes, pr.fails = 0, pr.fails+1
			if pr.fails >= max(p.health.Unhealthy, 1) {
				pr.healthy = false
			}
		}
	}
}

// accepts is the TCP health check: the target's node runs and something
// listens on the port.
func (l *Lab) accepts(instanceID string, port int) bool {
	n := l.nodeByID(instanceID)
	if n == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := n.Host.Dial(ctx, port)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func (l *Lab) healthSpeedup() int {
	if l.cfg.HealthCheckSpeedup > 0 {
		return l.cfg.HealthCheckSpeedup
	}
	return defaultHealthCheckSpeedup
}

// pick returns the next target in rotation: among the healthy ones, or
// among all while none is (fail open); "" when there is no target.
func (p *pool) pick() (string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var in []string
	for _, id := range p.targets {
		if p.probes[id] != nil && p.probes[id].healthy {
			in = append(in, id)
		}
	}
	if len(in) == 0 && !p.health.FailClosed {
		in = p.targets
	}
	if len(in) == 0 {
		return "", 0
	}
	p.next++
	return in[p.next%len(in)], p.targetPort
}

// healthy lists the targets in rotation by health, sorted.
func (p *pool) healthy() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, id := range p.targets {
		if p.probes[id] != nil && p.probes[id].healthy {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// serve carries one client connection to a target.
func (p *pool) serve(c net.Conn) {
	defer c.Close()
	id, port := p.pick()
	if id == "" {
		return
	}
	n := p.l.nodeByID(id)
	if n == nil {
		return // the instance is gone: the client sees its connection drop
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	up, err := n.Host.Dial(ctx, port)
	cancel()
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); _ = up.Close(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); _ = c.Close(); done <- struct{}{} }()
	<-done
}

// closeBalancers stops every load balancer.
func (l *Lab) closeBalancers() {
	b := l.lbs
	b.mu.Lock()
	b.closed = true
	fronts := b.fronts
	b.fronts = map[string]*front{}
	b.mu.Unlock()
	for _, f := range fronts {
		f.close()
	}
}

// resolveLoadBalancer returns the virtual host of the load balancer at a
// private or virtual address, or nil.
func (l *Lab) resolveLoadBalancer(addr netip.Addr) *host.Host {
	l.lbs.mu.Lock()
	defer l.lbs.mu.Unlock()
	for _, f := range l.lbs.fronts {
		if f.host.Addr == addr || slices.Contains(f.private, addr) {
			return f.host
		}
	}
	return nil
}

// lookup is the lab's DNS: a load balancer's name resolves to its first private address.
func (l *Lab) lookup(name string) (netip.Addr, bool) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	l.lbs.mu.Lock()
	defer l.lbs.mu.Unlock()
	for _, f := range l.lbs.fronts {
		for _, n := range f.lb.Names {
			if strings.ToLower(n) == name {
				return f.private[0], true
			}
		}
	}
	return netip.Addr{}, false
}

// LoadBalancerInfo is one load balancer of a cluster as the lab carries it.
type LoadBalancerInfo struct {
	Cloud string `json:"cloud"`
	ID    string `json:"id"`
	// Names and Addresses are what clients inside the lab network (and
	// through the bastion) dial.
	Names     []string       `json:"names"`
	Addresses []string       `json:"addresses"`
	VirtualIP string         `json:"virtual_ip"`
	Listeners []ListenerInfo `json:"listeners"`
}

// ListenerInfo is one port of a load balancer.
type ListenerInfo struct {
	Port int `json:"port"`
	// Local is host:port on 127.0.0.1 that carries the port for clients on this machine.
	Local   string   `json:"local"`
	Targets []string `json:"targets"`
	// Healthy are the targets that pass their health checks.
	Healthy []string `json:"healthy"`
}

// LoadBalancers lists a cluster's load balancers ("" for all), sorted by ID.
func (l *Lab) LoadBalancers(cluster string) []LoadBalancerInfo {
	l.lbs.mu.Lock()
	defer l.lbs.mu.Unlock()
	var out []LoadBalancerInfo
	for _, f := range l.lbs.fronts {
		if cluster != "" && f.lb.Cluster != cluster {
			continue
		}
		info := LoadBalancerInfo{Cloud: f.lb.Cloud, ID: f.lb.ID, Names: slices.Clone(f.lb.Names), Addresses: slices.Clone(f.lb.Addresses), VirtualIP: f.host.Addr.String()}
		for _, ls := range f.lb.Listeners {
			li := ListenerInfo{Port: ls.Port, Targets: slices.Clone(ls.Targets)}
			if p := f.pools[ls.Port]; p != nil {
				li.Local, li.Healthy = f.locals[ls.Port].Addr().String(), p.healthy()
			}
			info.Listeners = append(info.Listeners, li)
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b LoadBalancerInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// LoadBalancerEndpoint maps an address of a load balancer as a client in
// the cluster dials it (DNS name or private address, and port) to the
// host:port on 127.0.0.1 that carries it; false when no load balancer
// listens there.
func (l *Lab) LoadBalancerEndpoint(hostport string) (string, bool) {
	_, local, ok := l.frontAt(hostport)
	if !ok {
		return "", false
	}
	return local.Addr().String(), true
}

// frontAt is the cluster and the 127.0.0.1 listener of the load balancer
// that listens at host:port (its DNS name or an address); false when none does.
func (l *Lab) frontAt(hostport string) (string, net.Listener, bool) {
	h, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", nil, false
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", nil, false
	}
	addr, err := netip.ParseAddr(h)
	if err != nil {
		var ok bool
		if addr, ok = l.lookup(h); !ok {
			return "", nil, false
		}
	}
	l.lbs.mu.Lock()
	defer l.lbs.mu.Unlock()
	for _, f := range l.lbs.fronts {
		if f.host.Addr == addr || slices.Contains(f.private, addr) {
			if ln := f.locals[p]; ln != nil {
				return f.lb.Cluster, ln, true
			}
		}
	}
	return "", nil, false
}

// DialLab connects to host:port inside the lab network as a node would:
// host is a node's or load balancer's private or virtual address, or a load
// balancer's DNS name.
func (l *Lab) DialLab(ctx context.Context, hostport string) (net.Conn, error) {
	h, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("dial %s: port %q is not a number", hostport, port)
	}
	addr, err := netip.ParseAddr(h)
	if err != nil {
		var ok bool
		if addr, ok = l.lookup(h); !ok {
			return nil, fmt.Errorf("dial %s: lookup %s: no such host", hostport, h)
		}
	}
	target := l.resolve(addr)
	if target == nil {
		return nil, fmt.Errorf("dial %s: connect: no route to host", hostport)
	}
	return target.Dial(ctx, p)
}
