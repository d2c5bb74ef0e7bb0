package gce

import (
	"fmt"
	"maps"
	"sort"
	"strings"
)

// Instances returns every instance, ordered by zone and name.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.st.instances))
	for k := range s.st.instances {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Instance, 0, len(keys))
	for _, k := range keys {
		out = append(out, s.st.instances[k].snapshot())
	}
	return out
}

// ImageName is the image a public image or family reference resolves to,
// as Instance.Image reports it; false for an image the emulator does not serve.
func ImageName(ref string) (string, bool) {
	img, ok := resolveImage(ref)
	return img.name, ok
}

// Guest returns what the guest of an instance made on first boot, and
// false before its first boot.
func (s *Server) Guest(zone, name string) (GuestState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.st.instances[zone+"/"+name]
	if in == nil || in.guest == nil {
		return GuestState{}, false
	}
	g := *in.guest
	g.Instance = in.snapshot()
	g.Passwords = maps.Clone(g.Passwords)
	g.AuthorizedKeys = maps.Clone(g.AuthorizedKeys)
	return g, true
}

// Objects lists what exists for a cluster, as "kind/name" strings: the
// instances and disks labelled with it, the secrets labelled with it, and
// the networks, subnetworks and firewalls whose name starts with
// "<cluster>-" (they take no labels). Destroy must leave it empty.
func (s *Server) Objects(cluster string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, in := range s.st.instances {
		if in.pb.GetLabels()["mixedk8s-cluster"] == cluster {
			out = append(out, "instance/"+in.pb.GetName())
		}
	}
	for _, d := range s.st.disks {
		if d.labels["mixedk8s-cluster"] == cluster || strings.HasPrefix(d.name, cluster+"-") {
			out = append(out, "disk/"+d.name)
		}
	}
	for id, sec := range s.st.secrets {
		if sec.pb.GetLabels()["mixedk8s-cluster"] == cluster {
			out = append(out, "secret/"+id)
		}
	}
	for name := range s.st.networks {
		if strings.HasPrefix(name, cluster+"-") {
			out = append(out, "network/"+name)
		}
	}
	for name := range s.st.subnetworks {
		if strings.HasPrefix(name, cluster+"-") {
			out = append(out, "subnetwork/"+name)
		}
	}
	for name := range s.st.firewalls {
		if strings.HasPrefix(name, cluster+"-") {
			out = append(out, "firewall/"+name)
		}
	}
	sort.Strings(out)
	return out
}

// SecretValue returns the first version of a secret, for tests that check
// what was stored; false when there is none.
func (s *Server) SecretValue(id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.st.secrets[id]
	if sec == nil || len(sec.versions) == 0 {
		return nil, false
	}
	return append([]byte(nil), sec.versions[0].GetData()...), true
}

// Operations counts operations by type and outcome ("insert", "insert:ZONE_RESOURCE_POOL_EXHAUSTED").
func (s *Server) Operations() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, op := range s.st.ops {
		k := op.pb.GetOperationType()
		if errs := op.pb.GetError().GetErrors(); len(errs) > 0 {
			k += ":" + errs[0].GetCode()
		}
		out[k]++
	}
	return out
}

// StopInstance stops a running instance as a host maintenance or a crash
// would (TERMINATED, https://cloud.google.com/compute/docs/instances/instance-life-cycle).
func (s *Server) StopInstance(zone, name string) error {
	s.mu.Lock()
	in := s.st.instances[zone+"/"+name]
	if in == nil {
		s.mu.Unlock()
		return fmt.Errorf("no instance %s in %s", name, zone)
	}
	in.pb.Status = strPtr("TERMINATED")
	snap := in.snapshot()
	s.mu.Unlock()
	if s.opts.OnStopped != nil {
		s.opts.OnStopped(snap)
	}
	return nil
}

func strPtr(s string) *string { return &s }
