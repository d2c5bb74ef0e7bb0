package provider

import (
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// importLocation is the cloud location an import ID names.
type importLocation struct {
	cloud string
	value types.Object
}

// parseImportID reads an import ID: `<name>` (the location comes from the
// provider's configuration), `<region>/<name>` on AWS, or
// `<cloud>/<location...>/<name>` with the cloud's required location
// attributes in the order the docs list them, e.g.
// `azure/<subscription_id>/<location>/<resource_group>/<name>`.
func parseImportID(id string) (string, *importLocation, error) {
	parts := strings.Split(id, "/")
	for _, p := range parts {
		if p == "" {
			return "", nil, fmt.Errorf("import ID %q has an empty part; %s", id, importForms())
		}
	}
	if len(parts) == 1 {
		return id, nil, nil
	}
	c, ok := cloudBlockOf(parts[0])
	values := parts[1:]
	if !ok {
		if len(parts) != 2 {
			return "", nil, fmt.Errorf("import ID %q: %q is not a cloud (aws, azure or gcp); %s", id, parts[0], importForms())
		}
		c, _ = cloudBlockOf("aws")
		values = parts
	}
	required := c.requiredLocation()
	if len(values) != len(required)+1 {
		return "", nil, fmt.Errorf("import ID %q names %d values for %s, want %s/<name>; %s", id, len(values)-1, c.name, strings.Join(angle(required), "/"), importForms())
	}
	obj := make(map[string]attr.Value, len(c.location))
	for _, a := range c.location {
		obj[a.name] = types.ListNull(types.StringType)
		if !a.list {
			obj[a.name] = types.StringNull()
		}
	}
	for i, name := range required {
		obj[name] = types.StringValue(values[i])
	}
	return values[len(values)-1], &importLocation{cloud: c.name, value: types.ObjectValueMust(c.attrTypes(), obj)}, nil
}

// requiredLocation is the names of the cloud's required location attributes, in order.
func (c cloudBlock) requiredLocation() []string {
	var out []string
	for _, a := range c.location {
		if !a.list && !a.optional {
			out = append(out, a.name)
		}
	}
	return out
}

func angle(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "<" + n + ">"
	}
	return out
}

// importForms lists the accepted import IDs, for errors and docs.
func importForms() string {
	forms := []string{"<name>", "<region>/<name> (aws)"}
	for _, c := range cloudBlocks {
		forms = append(forms, c.name+"/"+strings.Join(angle(c.requiredLocation()), "/")+"/<name>")
	}
	return "fix: use one of " + strings.Join(forms, ", ")
}
