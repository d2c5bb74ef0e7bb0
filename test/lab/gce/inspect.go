package gce

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// SecretKMSKeys maps each location a secret is replicated in to the Cloud
// KMS key that encrypts it there ("" for Google-managed encryption, and
// the location "automatic" for an automatic policy); false for a secret
// that does not exist.
func (s *Server) SecretKMSKeys(id string) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.st.secrets[id]
	if sec == nil {
		return nil, false
	}
	out := map[string]string{}
	r := sec.pb.GetReplication()
	if a := r.GetAutomatic(); a != nil {
		out["automatic"] = a.GetCustomerManagedEncryption().GetKmsKeyName()
	}
	for _, rep := range r.GetUserManaged().GetReplicas() {
		out[rep.GetLocation()] = rep.GetCustomerManagedEncryption().GetKmsKeyName()
	}
	return out, true
}

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
// the networks, subnetworks, firewalls and load-balancing objects whose
// name starts with "<cluster>-" (most take no labels). Destroy must leave
// it empty.
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
	// Shared VPC host projects' objects too, by name (sharedvpc.go).
	for _, nw := range s.st.networks {
		if strings.HasPrefix(nw.GetName(), cluster+"-") {
			out = append(out, "network/"+nw.GetName())
		}
	}
	for _, sub := range s.st.subnetworks {
		if strings.HasPrefix(sub.GetName(), cluster+"-") {
			out = append(out, "subnetwork/"+sub.GetName())
		}
	}
	for _, fw := range s.st.firewalls {
		if strings.HasPrefix(fw.GetName(), cluster+"-") {
			out = append(out, "firewall/"+fw.GetName())
		}
	}
	// Load balancing objects take the cluster's name as prefix too.
	for kind, names := range map[string][]string{
		"address": slices.Collect(maps.Keys(s.st.addresses)), "forwardingrule": slices.Collect(maps.Keys(s.st.forwardingRules)),
		"backendservice": slices.Collect(maps.Keys(s.st.backendServices)), "healthcheck": slices.Collect(maps.Keys(s.st.healthChecks)),
	} {
		for _, name := range names {
			if strings.HasPrefix(name, cluster+"-") {
				out = append(out, kind+"/"+name)
			}
		}
	}
	for _, g := range s.st.groups {
		if strings.HasPrefix(g.pb.GetName(), cluster+"-") {
			out = append(out, "instancegroup/"+g.pb.GetName())
		}
	}
	sort.Strings(out)
	return out
}

// ObjectLabels maps what Objects lists that takes labels (instances, disks,
// secrets, addresses, forwarding rules) to its labels; networks,
// subnetworks, firewalls, backend services, health checks and instance
// groups take none (https://cloud.google.com/compute/docs/labeling-resources).
func (s *Server) ObjectLabels(cluster string) map[string]map[string]string {
	listed := map[string]bool{}
	for _, o := range s.Objects(cluster) {
		listed[o] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]string{}
	for _, in := range s.st.instances {
		if listed["instance/"+in.pb.GetName()] {
			out["instance/"+in.pb.GetName()] = maps.Clone(in.pb.GetLabels())
		}
	}
	for _, d := range s.st.disks {
		if listed["disk/"+d.name] {
			out["disk/"+d.name] = maps.Clone(d.labels)
		}
	}
	for name, a := range s.st.addresses {
		if listed["address/"+name] {
			out["address/"+name] = maps.Clone(a.GetLabels())
		}
	}
	for name, f := range s.st.forwardingRules {
		if listed["forwardingrule/"+name] {
			out["forwardingrule/"+name] = maps.Clone(f.GetLabels())
		}
	}
	for id, sec := range s.st.secrets {
		if listed["secret/"+id] {
			out["secret/"+id] = maps.Clone(sec.pb.GetLabels())
		}
	}
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
