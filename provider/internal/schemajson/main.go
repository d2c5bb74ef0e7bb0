// Command schemajson prints the provider's schemas in the format of
// `terraform providers schema -json`, read over the plugin protocol from the
// provider itself. tfplugindocs renders docs/ from it (tools/docs.sh)
// without a Terraform CLI, and with the ephemeral resources, which the
// CLIs built here (terraform 1.8, tofu 1.6) do not report.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/mixedk8s/mixedk8s/provider"
)

// address is the key the schemas are listed under: Terraform uses the
// source address; tfplugindocs --providers-schema looks the provider up by
// its short name.
var address = flag.String("address", "registry.terraform.io/mixedk8s/mixedk8s", "key of the provider in provider_schemas")

type schemasJSON struct {
	FormatVersion   string                         `json:"format_version"`
	ProviderSchemas map[string]providerSchemasJSON `json:"provider_schemas"`
}

type providerSchemasJSON struct {
	Provider           *schemaJSON            `json:"provider,omitempty"`
	Resources          map[string]*schemaJSON `json:"resource_schemas,omitempty"`
	DataSources        map[string]*schemaJSON `json:"data_source_schemas,omitempty"`
	EphemeralResources map[string]*schemaJSON `json:"ephemeral_resource_schemas,omitempty"`
}

type schemaJSON struct {
	Version int64      `json:"version"`
	Block   *blockJSON `json:"block"`
}

type blockJSON struct {
	Attributes      map[string]*attributeJSON   `json:"attributes,omitempty"`
	BlockTypes      map[string]*nestedBlockJSON `json:"block_types,omitempty"`
	Description     string                      `json:"description,omitempty"`
	DescriptionKind string                      `json:"description_kind,omitempty"`
	Deprecated      bool                        `json:"deprecated,omitempty"`
}

type nestedBlockJSON struct {
	Block       *blockJSON `json:"block"`
	NestingMode string     `json:"nesting_mode"`
	MinItems    int64      `json:"min_items,omitempty"`
	MaxItems    int64      `json:"max_items,omitempty"`
}

type attributeJSON struct {
	Type            json.RawMessage `json:"type,omitempty"`
	NestedType      *nestedTypeJSON `json:"nested_type,omitempty"`
	Description     string          `json:"description,omitempty"`
	DescriptionKind string          `json:"description_kind,omitempty"`
	Deprecated      bool            `json:"deprecated,omitempty"`
	Required        bool            `json:"required,omitempty"`
	Optional        bool            `json:"optional,omitempty"`
	Computed        bool            `json:"computed,omitempty"`
	Sensitive       bool            `json:"sensitive,omitempty"`
	WriteOnly       bool            `json:"write_only,omitempty"`
}

type nestedTypeJSON struct {
	Attributes  map[string]*attributeJSON `json:"attributes"`
	NestingMode string                    `json:"nesting_mode"`
}

func kind(k tfprotov6.StringKind) string {
	if k == tfprotov6.StringKindMarkdown {
		return "markdown"
	}
	return "plain"
}

func attributes(in []*tfprotov6.SchemaAttribute) (map[string]*attributeJSON, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]*attributeJSON, len(in))
	for _, a := range in {
		j := &attributeJSON{
			Description: a.Description, DescriptionKind: kind(a.DescriptionKind), Deprecated: a.Deprecated,
			Required: a.Required, Optional: a.Optional, Computed: a.Computed, Sensitive: a.Sensitive, WriteOnly: a.WriteOnly,
		}
		if a.NestedType != nil {
			attrs, err := attributes(a.NestedType.Attributes)
			if err != nil {
				return nil, err
			}
			j.NestedType = &nestedTypeJSON{Attributes: attrs, NestingMode: nesting(a.NestedType.Nesting)}
		} else {
			t, err := ctyType(a.Type)
			if err != nil {
				return nil, fmt.Errorf("attribute %s: %w", a.Name, err)
			}
			j.Type, err = json.Marshal(t)
			if err != nil {
				return nil, fmt.Errorf("attribute %s: %w", a.Name, err)
			}
		}
		out[a.Name] = j
	}
	return out, nil
}

// ctyType is a type in Terraform's JSON notation: "string",
// ["list","string"], ["object",{"a":"number"}].
func ctyType(t tftypes.Type) (any, error) {
	switch {
	case t.Is(tftypes.String):
		return "string", nil
	case t.Is(tftypes.Number):
		return "number", nil
	case t.Is(tftypes.Bool):
		return "bool", nil
	case t.Is(tftypes.DynamicPseudoType):
		return "dynamic", nil
	}
	switch tt := t.(type) {
	case tftypes.List:
		e, err := ctyType(tt.ElementType)
		return []any{"list", e}, err
	case tftypes.Set:
		e, err := ctyType(tt.ElementType)
		return []any{"set", e}, err
	case tftypes.Map:
		e, err := ctyType(tt.ElementType)
		return []any{"map", e}, err
	case tftypes.Object:
		attrs := map[string]any{}
		for name, at := range tt.AttributeTypes {
			e, err := ctyType(at)
			if err != nil {
				return nil, err
			}
			attrs[name] = e
		}
		return []any{"object", attrs}, nil
	case tftypes.Tuple:
		var elems []any
		for _, et := range tt.ElementTypes {
			e, err := ctyType(et)
			if err != nil {
				return nil, err
			}
			elems = append(elems, e)
		}
		return []any{"tuple", elems}, nil
	}
	return nil, fmt.Errorf("unsupported type %s", t)
}

func nesting(m tfprotov6.SchemaObjectNestingMode) string {
	switch m {
	case tfprotov6.SchemaObjectNestingModeList:
		return "list"
	case tfprotov6.SchemaObjectNestingModeSet:
		return "set"
	case tfprotov6.SchemaObjectNestingModeMap:
		return "map"
	}
	return "single"
}

func blockNesting(m tfprotov6.SchemaNestedBlockNestingMode) string {
	switch m {
	case tfprotov6.SchemaNestedBlockNestingModeList:
		return "list"
	case tfprotov6.SchemaNestedBlockNestingModeSet:
		return "set"
	case tfprotov6.SchemaNestedBlockNestingModeMap:
		return "map"
	case tfprotov6.SchemaNestedBlockNestingModeGroup:
		return "group"
	}
	return "single"
}

func block(b *tfprotov6.SchemaBlock) (*blockJSON, error) {
	attrs, err := attributes(b.Attributes)
	if err != nil {
		return nil, err
	}
	out := &blockJSON{Attributes: attrs, Description: b.Description, DescriptionKind: kind(b.DescriptionKind), Deprecated: b.Deprecated}
	for _, nb := range b.BlockTypes {
		inner, err := block(nb.Block)
		if err != nil {
			return nil, err
		}
		if out.BlockTypes == nil {
			out.BlockTypes = map[string]*nestedBlockJSON{}
		}
		out.BlockTypes[nb.TypeName] = &nestedBlockJSON{Block: inner, NestingMode: blockNesting(nb.Nesting), MinItems: nb.MinItems, MaxItems: nb.MaxItems}
	}
	return out, nil
}

func schema(s *tfprotov6.Schema) (*schemaJSON, error) {
	b, err := block(s.Block)
	if err != nil {
		return nil, err
	}
	return &schemaJSON{Version: s.Version, Block: b}, nil
}

func schemas(in map[string]*tfprotov6.Schema) (map[string]*schemaJSON, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]*schemaJSON, len(in))
	for name, s := range in {
		j, err := schema(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = j
	}
	return out, nil
}

func run() error {
	ctx := context.Background()
	srv, err := providerserver.NewProtocol6WithError(provider.New("docs")())()
	if err != nil {
		return err
	}
	resp, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		return err
	}
	for _, d := range resp.Diagnostics {
		return fmt.Errorf("provider schema: %s: %s", d.Summary, d.Detail)
	}
	var p providerSchemasJSON
	if p.Provider, err = schema(resp.Provider); err != nil {
		return err
	}
	if p.Resources, err = schemas(resp.ResourceSchemas); err != nil {
		return err
	}
	if p.DataSources, err = schemas(resp.DataSourceSchemas); err != nil {
		return err
	}
	if p.EphemeralResources, err = schemas(resp.EphemeralResourceSchemas); err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(schemasJSON{FormatVersion: "1.0", ProviderSchemas: map[string]providerSchemasJSON{*address: p}})
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "schemajson:", err)
		os.Exit(1)
	}
}
