package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzValidate feeds arbitrary JSON/YAML specs through ParseSpec and Validate:
// no panic, the same answer twice, and every problem complete and in order.
func FuzzValidate(f *testing.F) {
	seeds := []string{
		`{}`,
		`{"name":"prod","azure":{"subscription_id":"0b1f6471-1bf0-4dda-aec3-cb9272f09590","location":"westeurope","resource_group":"rg"},"node_pools":{"lin":{"count":2},"win":{"os":"windows","count":2}}}`,
		`{"name":"p","aws":{"region":"eu-west-1","zones":["eu-west-1a","us-east-1a","eu-west-1a"]},"node_pools":{"win":{"os":"windows","isolation":"hyperv","instance_type":"m8i.96xlarge","count":-3}}}`,
		`{"name":"Prod_1","gcp":{"project":"x","region":"europe-west4","zone":"europe-west4"},"kubernetes_version":"v1.36","network":{"cni":"weave","node_cidr":"10.0.0.1/8","pod_cidr":"10.0.0.0/8","service_cidr":"::/0"}}`,
		`{"name":"a","azure":{},"aws":{},"gcp":{},"control_plane":{"count":4,"disk_gb":-1},"node_pools":{"cp":{"count":9223372036854775807},"Cp":{"os":"windows","count":501},"":{"os":"plan9"}}}`,
		`{"name":"x","aws":{"region":"us-east-1"},"node_pools":{"l":{"labels":{"kubernetes.io/os":"","a/b/c":"v","":""},"taints":[":",":NoSchedule","a=b=c:NoExecute","k:NoSchedule","k:NoSchedule"]}}}`,
		`{"name":"x","aws":{"region":"us-east-1"},"access":{"admin_cidrs":["0.0.0.0/0","",":::/0"],"ssh_public_keys":["","ssh-rsa"],"bastion":{"address":"[::1]:99999","user":"","host_key":"-----BEGIN RSA PRIVATE KEY-----"}},"artifacts":{"mirror_base_url":"http://[::1"}}`,
		"name: y\nkubernetes_version: 1.35.8\ngcp: {project: mixed-lab, region: us-central1, zone: us-central1-c}\nnode_pools: {w: {os: windows, windows_version: \"2025\"}}\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	files, err := filepath.Glob(filepath.Join("testdata", "validate", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return // big documents only slow the YAML parser down; they reach no new rule
		}
		s, err := ParseSpec(data)
		if err != nil {
			return
		}
		first, second := Validate(s), Validate(s)
		if (first == nil) != (second == nil) || (first != nil && first.Error() != second.Error()) {
			t.Fatalf("Validate is not deterministic:\n%v\n---\n%v", first, second)
		}
		if first == nil {
			return
		}
		var ps Problems
		if !errors.As(first, &ps) || len(ps) == 0 {
			t.Fatalf("Validate() = %v (%T), want non-empty Problems", first, first)
		}
		for _, p := range ps {
			if strings.TrimSpace(p.Path) == "" || strings.TrimSpace(p.Message) == "" || strings.TrimSpace(p.Fix) == "" {
				t.Errorf("incomplete problem %#v", p)
			}
		}
		if !slices.IsSortedFunc(ps, func(a, b Problem) int {
			return strings.Compare(a.Path+"\x00"+a.Message, b.Path+"\x00"+b.Message)
		}) {
			t.Errorf("problems are not sorted by path then message:\n%v", first)
		}
	})
}
