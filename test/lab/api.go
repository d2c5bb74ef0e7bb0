package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// The HTTP API, on 127.0.0.1 only (Env.API):
//
//	GET  /objects?cluster=NAME  {"cluster": NAME, "objects": ["instance/i-...", "node/demo-cp-0", "parameter/mixedk8s/demo/seed", ...]}
//	GET  /nodes[?cluster=NAME]  the live nodes: name, instance, OS, addresses, reboots, agent digests
//	GET  /calls                 {"calls": {"RunInstances": 5, ...}, "mutating": 12, "read": 40}
//	GET  /clusters/NAME/api-endpoint  {"cluster": NAME, "api_endpoint": "127.0.0.1:PORT"}: the API server for kubectl on this machine
//	GET  /clusters/NAME/load-balancers  {"cluster": NAME, "load_balancers": [LoadBalancerInfo...]}: addresses, targets, health, and the 127.0.0.1 port of each listener
//	POST /calls/reset           zero the call counts
//	POST /faults                inject a Fault (JSON body; see Fault)
//	GET  /problems              instances that could not become nodes, and other lab errors

// NodeInfo is a live node as GET /nodes reports it.
type NodeInfo struct {
	Name         string            `json:"name"`
	InstanceID   string            `json:"instance_id"`
	OS           string            `json:"os"`
	PrivateIP    string            `json:"private_ip"`
	VirtualIP    string            `json:"virtual_ip"`
	Reboots      int               `json:"reboots"`
	AgentDigests []string          `json:"agent_digests"`
	Tags         map[string]string `json:"tags"`
}

// serveAPI starts the HTTP API on a free port of 127.0.0.1.
func (l *Lab) serveAPI() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("start lab API: listen on 127.0.0.1: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /objects", l.apiObjects)
	mux.HandleFunc("GET /nodes", l.apiNodes)
	mux.HandleFunc("GET /calls", l.apiCalls)
	mux.HandleFunc("GET /clusters/{name}/api-endpoint", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		ep, ok := l.APIEndpoint(name)
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Errorf("cluster %q runs no control plane in this lab; fix: apply the cluster first (its first control-plane node runs kubeadm init)", name))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"cluster": name, "api_endpoint": ep})
	})
	mux.HandleFunc("GET /clusters/{name}/load-balancers", func(w http.ResponseWriter, r *http.Request) {
		lbs := l.LoadBalancers(r.PathValue("name"))
		if lbs == nil {
			lbs = []LoadBalancerInfo{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"cluster": r.PathValue("name"), "load_balancers": lbs})
	})
	mux.HandleFunc("POST /calls/reset", func(w http.ResponseWriter, _ *http.Request) {
		l.EC2.ResetCalls()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /faults", l.apiFaults)
	mux.HandleFunc("GET /problems", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"problems": nonNil(l.Problems())})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	l.stopHTTP = append(l.stopHTTP, func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

func (l *Lab) apiObjects(w http.ResponseWriter, r *http.Request) {
	cluster := r.URL.Query().Get("cluster")
	if cluster == "" {
		writeError(w, http.StatusBadRequest, errors.New("GET /objects needs ?cluster=NAME (the cluster whose cloud objects and processes to list)"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cluster": cluster, "objects": nonNil(l.Objects(cluster))})
}

func (l *Lab) apiNodes(w http.ResponseWriter, r *http.Request) {
	out := []NodeInfo{}
	for _, n := range l.Nodes(r.URL.Query().Get("cluster")) {
		out = append(out, NodeInfo{
			Name: n.Name, InstanceID: n.InstanceID, OS: n.Host.OS, PrivateIP: n.PrivateIP.String(), VirtualIP: n.Host.Addr.String(),
			Reboots: n.Sandbox.Machine().Reboots, AgentDigests: nonNil(n.AgentDigests()), Tags: n.Tags,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": out})
}

func (l *Lab) apiCalls(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"calls": l.EC2.Calls(), "mutating": l.EC2.MutatingCalls(), "read": l.EC2.ReadCalls()})
}

func (l *Lab) apiFaults(w http.ResponseWriter, r *http.Request) {
	var f Fault
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("POST /faults: the body is not a fault: %w; fix: send e.g. {\"kind\":\"throttle\",\"action\":\"*\",\"every\":2}", err))
		return
	}
	if err := l.Inject(f); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// nonNil makes empty lists encode as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
