package gcp

import (
	"context"
	"path"
	"strings"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
)

// wait blocks until the operation is DONE and returns its failure, if any.
// It asks the operation's own scope (zone, region or global) with the
// operations' wait method, which returns when the operation is done or
// after about two minutes, so a long insert costs a call every two minutes
// instead of a poll every few seconds
// (https://cloud.google.com/compute/docs/api/how-tos/api-requests-responses#wait_operations).
// A DONE operation with errors is a failure: the client library's
// Operation.Wait only fails on httpErrorStatusCode (compute apiv1
// operations.go), so the error field is read here.
func (c *Cloud) wait(ctx context.Context, op *compute.Operation, k call) error {
	p := op.Proto()
	// An operation lives in the project of its object: the host project's
	// for a Shared VPC firewall rule.
	project := c.cfg.Project
	if parts := strings.Split(strings.TrimPrefix(p.GetSelfLink(), "https://www.googleapis.com/compute/v1/"), "/"); len(parts) > 1 && parts[0] == "projects" {
		project = parts[1]
	}
	for p.GetStatus() != computepb.Operation_DONE {
		var err error
		switch {
		case p.GetZone() != "":
			p, err = c.zoneOps.Wait(ctx, &computepb.WaitZoneOperationRequest{Project: project, Zone: path.Base(p.GetZone()), Operation: p.GetName()}, c.retry())
		case p.GetRegion() != "":
			p, err = c.regionOps.Wait(ctx, &computepb.WaitRegionOperationRequest{Project: project, Region: path.Base(p.GetRegion()), Operation: p.GetName()}, c.retry())
		default:
			p, err = c.globalOps.Wait(ctx, &computepb.WaitGlobalOperationRequest{Project: project, Operation: p.GetName()}, c.retry())
		}
		if err != nil {
			return k.classify(err)
		}
	}
	return k.classify(opFailure(p))
}
