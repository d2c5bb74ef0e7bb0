package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// A customer-managed key keys objects made afterwards, so changing it
// updates the cluster in place; a change of its location still replaces it.
func TestKeyChangesUpdateInPlaceLocationChangesReplace(t *testing.T) {
	t.Parallel()
	gcp := func(zone, key string) types.Object {
		k := types.StringNull()
		if key != "" {
			k = types.StringValue(key)
		}
		return types.ObjectValueMust(gcpBlock.attrTypes(), map[string]attr.Value{
			"project": types.StringValue("p"), "region": types.StringValue("europe-west4"), "zone": types.StringValue(zone), "kms_key_name": k,
			"network": types.StringNull(), "subnetwork": types.StringNull(), "network_project": types.StringNull(),
		})
	}
	azure := func(group, des string, subnet ...string) types.Object {
		d := types.StringNull()
		if des != "" {
			d = types.StringValue(des)
		}
		sn := types.StringNull()
		if len(subnet) > 0 {
			sn = types.StringValue(subnet[0])
		}
		return types.ObjectValueMust(azureBlock.attrTypes(), map[string]attr.Value{
			"subscription_id": types.StringValue("s"), "location": types.StringValue("westeurope"), "resource_group": types.StringValue(group), "disk_encryption_set_id": d, "subnet_id": sn,
		})
	}
	aws := func(region, key string) types.Object {
		return types.ObjectValueMust(awsBlock.attrTypes(), map[string]attr.Value{
			"region": types.StringValue(region), "zones": types.ListNull(types.StringType), "kms_key_id": optString(key),
			"vpc_id": types.StringNull(), "subnet_ids": types.ListNull(types.StringType),
		})
	}
	gcpWith := func(o types.Object, name, v string) types.Object {
		attrs := o.Attributes()
		attrs[name] = types.StringValue(v)
		return types.ObjectValueMust(gcpBlock.attrTypes(), attrs)
	}
	const key = "projects/p/locations/europe-west4/keyRings/r/cryptoKeys/"
	const des = "/subscriptions/s/resourceGroups/k/providers/Microsoft.Compute/diskEncryptionSets/"
	for _, tc := range []struct {
		name        string
		block       cloudBlock
		state, plan types.Object
		wantReplace bool
	}{
		{"gcp key added", gcpBlock, gcp("europe-west4-a", ""), gcp("europe-west4-a", key+"a"), false},
		{"gcp key changed", gcpBlock, gcp("europe-west4-a", key+"a"), gcp("europe-west4-a", key+"b"), false},
		{"gcp zone changed", gcpBlock, gcp("europe-west4-a", key+"a"), gcp("europe-west4-b", key+"a"), true},
		{"gcp removed", gcpBlock, gcp("europe-west4-a", ""), gcpBlock.null(), true},
		{"gcp network set", gcpBlock, gcp("europe-west4-a", ""), gcpWith(gcp("europe-west4-a", ""), "network", "shared"), true},
		{"azure set added", azureBlock, azure("rg", ""), azure("rg", des+"a"), false},
		{"azure group changed", azureBlock, azure("rg", des+"a"), azure("rg2", des+"a"), true},
		{"azure subnet changed", azureBlock, azure("rg", "", "/subscriptions/s/resourceGroups/n/providers/Microsoft.Network/virtualNetworks/v/subnets/a"),
			azure("rg", "", "/subscriptions/s/resourceGroups/n/providers/Microsoft.Network/virtualNetworks/v/subnets/b"), true},
		{"aws key changed", awsBlock, aws("eu-west-1", "alias/a"), aws("eu-west-1", "alias/b"), false},
		{"aws region changed", awsBlock, aws("eu-west-1", "alias/a"), aws("eu-west-2", "alias/a"), true},
	} {
		// An update: state and plan of the resource exist.
		some := tftypes.NewValue(tftypes.Object{AttributeTypes: map[string]tftypes.Type{}}, map[string]tftypes.Value{})
		req := planmodifier.ObjectRequest{Path: path.Root(tc.block.name), StateValue: tc.state, PlanValue: tc.plan, ConfigValue: tc.plan,
			State: tfsdk.State{Raw: some}, Plan: tfsdk.Plan{Raw: some}}
		resp := &planmodifier.ObjectResponse{PlanValue: tc.plan}
		tc.block.replace.PlanModifyObject(context.Background(), req, resp)
		if resp.Diagnostics.HasError() {
			t.Fatalf("%s: %v", tc.name, resp.Diagnostics)
		}
		if resp.RequiresReplace != tc.wantReplace {
			t.Errorf("%s: replace = %v, want %v", tc.name, resp.RequiresReplace, tc.wantReplace)
		}
	}
}
