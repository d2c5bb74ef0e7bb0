package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	eschema "github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	rschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// cloudBlock is everything the provider knows of one cloud: its location
// attributes (on the resource and on lookups), its provider attribute, the
// mapping to and from cluster.Spec, and the backend that builds the
// library's cloud. aws.go, azure.go and gcp.go each define one; nothing
// else in the package names a cloud's attributes.
type cloudBlock struct {
	// name is the attribute name and the clouds profile's name.
	name string
	// title names the cloud in descriptions, e.g. "Google Cloud".
	title string
	// location is the resource's location attributes, also accepted by lookups.
	location []locationAttr
	// description and replace describe the resource's attribute and why it replaces.
	description string
	replace     planmodifier.Object
	// provider is the provider block's attribute for this cloud.
	provider pschema.SingleNestedAttribute
	// toSpec sets the spec's location when the object is set (see specReader.object).
	toSpec func(r *specReader, v types.Object, s *cluster.Spec)
	// fromSpec is the attribute's values for the spec's location, nil when the cluster is elsewhere.
	fromSpec func(s cluster.Spec) map[string]attr.Value
	// options builds the library's cloud and provisioner for one cluster.
	options func(ctx context.Context, b cloudBackend, spec cluster.Spec) (cluster.Options, error)
	// checkCredentials, when set, checks the provider block's credentials
	// for this cloud once, in Configure; errors are at the cloud's attribute.
	checkCredentials func(ctx context.Context, c providerConfig) diag.Diagnostics
}

// cloudBlocks are the clouds in the order messages list them.
var cloudBlocks = []cloudBlock{azureBlock, awsBlock, gcpBlock}

// cloudBlockOf is the named cloud's block.
func cloudBlockOf(name string) (cloudBlock, bool) {
	for _, c := range cloudBlocks {
		if c.name == name {
			return c, true
		}
	}
	return cloudBlock{}, false
}

// locationAttr is one attribute of a cloud's location, written once and
// rendered for the resource, the data source and the ephemeral resource.
type locationAttr struct {
	name        string
	description string
	// list is an optional list of strings, optional an optional string;
	// other attributes are required strings.
	list, optional bool
	// lookup, when set, describes the attribute on lookups, which otherwise ignore optional ones.
	lookup string
}

func (c cloudBlock) attrTypes() map[string]attr.Type {
	out := make(map[string]attr.Type, len(c.location))
	for _, a := range c.location {
		out[a.name] = types.StringType
		if a.list {
			out[a.name] = stringList
		}
	}
	return out
}

// null is the cloud's attribute when the cluster is elsewhere.
func (c cloudBlock) null() types.Object { return types.ObjectNull(c.attrTypes()) }

func (c cloudBlock) resourceAttribute() rschema.SingleNestedAttribute {
	attrs := map[string]rschema.Attribute{}
	for _, a := range c.location {
		if a.list {
			attrs[a.name] = rschema.ListAttribute{Optional: true, ElementType: types.StringType, Description: a.description}
			continue
		}
		attrs[a.name] = rschema.StringAttribute{Required: !a.optional, Optional: a.optional, Description: a.description}
	}
	return rschema.SingleNestedAttribute{
		Optional: true, Description: c.description, Attributes: attrs,
		PlanModifiers: []planmodifier.Object{c.replace},
	}
}

// lookupListDescription is an optional attribute's on lookups: placement or keys of new objects only, so unused.
func lookupListDescription(name string) string {
	return fmt.Sprintf("Ignored by lookups; accepted so a resource's `%s` value can be passed as is.", name)
}

// lookupDescriptionOf is a location attribute's description on lookups.
func (c cloudBlock) lookupDescriptionOf(a locationAttr) string {
	switch {
	case a.lookup != "":
		return a.lookup
	case a.list || a.optional:
		return lookupListDescription(c.name)
	}
	return a.description
}

func (c cloudBlock) dataSourceAttribute() dschema.SingleNestedAttribute {
	attrs := map[string]dschema.Attribute{}
	for _, a := range c.location {
		if a.list {
			attrs[a.name] = dschema.ListAttribute{Optional: true, ElementType: types.StringType, Description: c.lookupDescriptionOf(a)}
			continue
		}
		attrs[a.name] = dschema.StringAttribute{Required: !a.optional, Optional: a.optional, Description: c.lookupDescriptionOf(a)}
	}
	return dschema.SingleNestedAttribute{Optional: true, Validators: oneCloud(c.name), Description: c.lookupDescription(), Attributes: attrs}
}

func (c cloudBlock) ephemeralAttribute() eschema.SingleNestedAttribute {
	attrs := map[string]eschema.Attribute{}
	for _, a := range c.location {
		if a.list {
			attrs[a.name] = eschema.ListAttribute{Optional: true, ElementType: types.StringType, Description: c.lookupDescriptionOf(a)}
			continue
		}
		attrs[a.name] = eschema.StringAttribute{Required: !a.optional, Optional: a.optional, Description: c.lookupDescriptionOf(a)}
	}
	return eschema.SingleNestedAttribute{Optional: true, Validators: oneCloud(c.name), Description: c.lookupDescription(), Attributes: attrs}
}

func (c cloudBlock) lookupDescription() string { return c.title + ". " + lookupCloudDescription }

// cloudAttrs are the cloud attributes every model carries; exactly one is
// set on a resource, at most one on a lookup.
type cloudAttrs struct {
	AWS   types.Object `tfsdk:"aws"`
	Azure types.Object `tfsdk:"azure"`
	GCP   types.Object `tfsdk:"gcp"`
}

// get is the named cloud's attribute.
func (a cloudAttrs) get(name string) types.Object {
	switch name {
	case "aws":
		return a.AWS
	case "azure":
		return a.Azure
	}
	return a.GCP
}

// set replaces the named cloud's attribute.
func (a *cloudAttrs) set(name string, v types.Object) {
	switch name {
	case "aws":
		a.AWS = v
	case "azure":
		a.Azure = v
	default:
		a.GCP = v
	}
}

// toSpec sets the spec's location from whichever cloud attributes are set.
func (a cloudAttrs) toSpec(r *specReader, s *cluster.Spec) {
	for _, c := range cloudBlocks {
		c.toSpec(r, a.get(c.name), s)
	}
}

// fromSpec sets every cloud attribute from the spec: its cloud's, the others null.
func (a *cloudAttrs) fromSpec(s cluster.Spec) {
	for _, c := range cloudBlocks {
		v := c.null()
		if values := c.fromSpec(s); values != nil {
			v = types.ObjectValueMust(c.attrTypes(), values)
		}
		a.set(c.name, v)
	}
}
