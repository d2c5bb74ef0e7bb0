package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// crictl answers the two crictl commands that reach a control-plane
// node's etcd, as on a kubeadm node where etcd runs in a static Pod:
// `crictl ps --name etcd -q` prints the etcd container's ID, and
// `crictl exec ID etcdctl ... member list -w json` or `member remove HEXID`
// runs etcdctl in it against the node's own etcd (the image
// registry.k8s.io/etcd ships etcdctl beside etcd). Anything else is refused,
// so a new command shape shows up as a failing test.
func (k *kube) crictl(ctx context.Context, n *Node, args []string) ([]byte, error) {
	k.mu.Lock()
	pl := k.planes[n.Cluster]
	held := pl != nil && pl.holds(n)
	k.mu.Unlock()
	container := "etcd-" + n.InstanceID
	switch {
	case args[0] == "ps":
		if !slices.Equal(args, []string{"ps", "--name", "etcd", "-q"}) {
			return nil, fmt.Errorf("crictl %s: the lab answers only `crictl ps --name etcd -q`", strings.Join(args, " "))
		}
		if !held {
			return nil, nil // no etcd container runs here
		}
		return []byte(container + "\n"), nil
	case len(args) < 3 || args[2] != "etcdctl":
		return nil, fmt.Errorf("crictl %s: the lab runs only etcdctl in the etcd container", strings.Join(args, " "))
	case !held || args[1] != container:
		return nil, fmt.Errorf("crictl exec: container %q not found", args[1])
	}
	var words []string
	format := "simple"
	rest := args[3:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "-w" || a == "--write-out":
			if i+1 < len(rest) {
				format = rest[i+1]
				i++
			}
		case strings.HasPrefix(a, "--write-out="):
			format = strings.TrimPrefix(a, "--write-out=")
		case strings.HasPrefix(a, "-"):
		default:
			words = append(words, a)
		}
	}
	switch {
	case len(words) == 2 && words[0] == "member" && words[1] == "list" && format == "json":
		ms, err := pl.cp.EtcdMembers(ctx)
		if err != nil {
			return nil, err
		}
		type member struct {
			ID        uint64 `json:"ID"`
			Name      string `json:"name"`
			IsLearner bool   `json:"isLearner,omitempty"`
		}
		var out struct {
			Members []member `json:"members"`
		}
		for _, m := range ms {
			id, _ := strconv.ParseUint(m.ID, 16, 64)
			out.Members = append(out.Members, member{ID: id, Name: m.Name, IsLearner: m.Learner})
		}
		return json.Marshal(out)
	case len(words) == 3 && words[0] == "member" && words[1] == "remove":
		if err := pl.cp.RemoveMemberID(ctx, words[2]); err != nil {
			return nil, fmt.Errorf("etcdctl member remove %s: %w", words[2], err)
		}
		return fmt.Appendf(nil, "Member %s removed from cluster\n", words[2]), nil
	}
	return nil, fmt.Errorf("etcdctl %s: the lab answers `member list -w json` and `member remove ID`", strings.Join(args[3:], " "))
}
