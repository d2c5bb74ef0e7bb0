package provider

import (
	"strings"
	"testing"
)

func TestParseImportID(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		id, name, cloud string
		want            map[string]string
		err             string
	}{
		{id: "demo", name: "demo"},
		{id: "eu-west-1/demo", name: "demo", cloud: "aws", want: map[string]string{"region": "eu-west-1"}},
		{id: "aws/eu-west-1/demo", name: "demo", cloud: "aws", want: map[string]string{"region": "eu-west-1"}},
		{id: "azure/00000000-0000-0000-0000-000000000001/westeurope/rg/demo", name: "demo", cloud: "azure",
			want: map[string]string{"subscription_id": "00000000-0000-0000-0000-000000000001", "location": "westeurope", "resource_group": "rg"}},
		{id: "gcp/proj/europe-west4/europe-west4-a/demo", name: "demo", cloud: "gcp",
			want: map[string]string{"project": "proj", "region": "europe-west4", "zone": "europe-west4-a"}},
		{id: "gcp/proj/demo", err: "names 1 values for gcp, want <project>/<region>/<zone>/<name>"},
		{id: "x/y/demo", err: `"x" is not a cloud`},
		{id: "eu-west-1//demo", err: "empty part"},
	} {
		name, loc, err := parseImportID(c.id)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "fix: use one of <name>, <region>/<name> (aws)") {
				t.Errorf("%q: error %v, want %q and the accepted forms", c.id, err, c.err)
			}
			continue
		}
		if err != nil || name != c.name {
			t.Errorf("%q: name %q, %v", c.id, name, err)
			continue
		}
		if (loc == nil) != (c.cloud == "") {
			t.Errorf("%q: location %+v, want cloud %q", c.id, loc, c.cloud)
			continue
		}
		if loc == nil {
			continue
		}
		attrs := loc.value.Attributes()
		if loc.cloud != c.cloud || len(attrs) == 0 {
			t.Errorf("%q: cloud %q", c.id, loc.cloud)
		}
		for k, v := range c.want {
			if got := attrs[k].String(); got != `"`+v+`"` {
				t.Errorf("%q: %s = %s, want %q", c.id, k, got, v)
			}
		}
	}
}
