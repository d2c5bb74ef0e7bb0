package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

// podCIDRWait bounds the wait for a Node's spec.podCIDR: flanneld's kube
// subnet manager fails with "node %q pod cidr not assigned" when it is empty
// (flannel-io/flannel pkg/subnet/kube/kube.go AcquireLease) and its service
// is started again; kube-controller-manager's range allocator sets it within
// about a second of the Node's registration
// (kubernetes/kubernetes pkg/controller/nodeipam/ipam/range_allocator.go).
const podCIDRWait = 30 * time.Second

// podSubnetHook gives the sandbox's flanneld the pod subnet the cluster's
// control plane allocated to the node (the Node's spec.podCIDR), unless the
// caller's hook gives one.
func (k *kube) podSubnetHook(l *Lab, name string, user sandbox.Hooks) func(ctx context.Context, node string) (string, error) {
	if user.PodSubnet != nil {
		return user.PodSubnet
	}
	return func(ctx context.Context, node string) (string, error) {
		n := l.Node(name)
		if n == nil {
			return "", fmt.Errorf("lab node %s is not running", name)
		}
		return k.podCIDR(ctx, n.Cluster, node)
	}
}

// podCIDR reads a Node's spec.podCIDR from the cluster's API server,
// waiting up to podCIDRWait for the allocation.
func (k *kube) podCIDR(ctx context.Context, cluster, node string) (string, error) {
	k.mu.Lock()
	pl := k.planes[cluster]
	k.mu.Unlock()
	if pl == nil {
		return "", fmt.Errorf("node %q pod cidr not assigned: cluster %s has no control plane", node, cluster)
	}
	ctx, cancel := context.WithTimeout(ctx, podCIDRWait)
	defer cancel()
	for {
		code, body, err := pl.cp.Do(ctx, http.MethodGet, "/api/v1/nodes/"+url.PathEscape(node), nil)
		if err == nil && code == http.StatusOK {
			var obj struct {
				Spec struct {
					PodCIDR string `json:"podCIDR"`
				} `json:"spec"`
			}
			if err := json.Unmarshal(body, &obj); err != nil {
				return "", fmt.Errorf("node %s does not decode: %w", node, err)
			}
			if obj.Spec.PodCIDR != "" {
				return obj.Spec.PodCIDR, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("node %q pod cidr not assigned (API server: HTTP %d, %v)", node, code, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// PodCIDR is the pod subnet the cluster's control plane allocated to a
// node (its Node's spec.podCIDR), for tests to compare with what the node
// built.
func (l *Lab) PodCIDR(ctx context.Context, cluster, node string) (string, error) {
	return l.kube.podCIDR(ctx, cluster, node)
}
