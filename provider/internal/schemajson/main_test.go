package main

import (
	"encoding/json"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

func TestCtyTypeUsesTerraformsJSONNotation(t *testing.T) {
	t.Parallel()
	typ := tftypes.Object{AttributeTypes: map[string]tftypes.Type{
		"a": tftypes.List{ElementType: tftypes.String},
		"b": tftypes.Map{ElementType: tftypes.Number},
		"c": tftypes.Set{ElementType: tftypes.Bool},
		"d": tftypes.Tuple{ElementTypes: []tftypes.Type{tftypes.String, tftypes.DynamicPseudoType}},
	}}
	v, err := ctyType(typ)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(v)
	want := `["object",{"a":["list","string"],"b":["map","number"],"c":["set","bool"],"d":["tuple",["string","dynamic"]]}]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
