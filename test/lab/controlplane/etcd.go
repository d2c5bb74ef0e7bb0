package controlplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// etcdClient speaks etcd's v3 JSON gateway (go.etcd.io/etcd/api/v3
// etcdserverpb/gw/rpc.pb.gw.go: POST /v3/cluster/member/{list,add,promote,remove};
// on by default, etcd's --enable-grpc-gateway) with the health-check client
// certificate, the one kubeadm's own etcd client uses
// (kubernetes/cmd/kubeadm/app/util/etcd/etcd.go, NewFromCluster). Plain
// net/http, like the rest of this package: one dependency fewer than
// etcd's client.
type etcdClient struct {
	hc        *http.Client
	endpoints []string // client URLs; each call tries them in order
}

// etcdMember is one member as etcd lists it. A member added but not yet
// started has no name.
type etcdMember struct {
	ID         etcdID   `json:"ID"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// etcdID is a member ID; the gateway writes uint64 as a JSON string (protojson).
type etcdID uint64

func (id etcdID) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatUint(uint64(id), 10))
}

func (id *etcdID) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseUint(strings.Trim(string(b), `"`), 10, 64)
	*id = etcdID(v)
	return err
}

func (id etcdID) String() string { return strconv.FormatUint(uint64(id), 16) }

func newEtcdClient(certDir string, endpoints []string) (*etcdClient, error) {
	caPEM, err := os.ReadFile(filepath.Join(certDir, "etcd", "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(certDir, "etcd", "healthcheck-client.crt"), filepath.Join(certDir, "etcd", "healthcheck-client.key"))
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("etcd client: etcd/ca.crt holds no certificate")
	}
	return &etcdClient{endpoints: endpoints, hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
	}}}, nil
}

// call posts req to path on the first endpoint that answers.
func (e *etcdClient) call(ctx context.Context, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	last := errors.New("no etcd endpoint")
	for _, ep := range e.endpoints {
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		r.Header.Set("Content-Type", "application/json")
		res, err := e.hc.Do(r)
		if err != nil {
			last = err
			continue
		}
		data, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			last = err
			continue
		}
		if res.StatusCode != http.StatusOK {
			var st struct {
				Message string `json:"message"`
			}
			_ = json.Unmarshal(data, &st)
			// An answer is etcd's verdict: another member would give the same.
			return fmt.Errorf("etcd %s: HTTP %d: %s", path, res.StatusCode, st.Message)
		}
		return json.Unmarshal(data, resp)
	}
	return fmt.Errorf("etcd %s: %w", path, last)
}

func (e *etcdClient) members(ctx context.Context) ([]etcdMember, error) {
	var out struct {
		Members []etcdMember `json:"members"`
	}
	err := e.call(ctx, "/v3/cluster/member/list", map[string]any{}, &out)
	return out.Members, err
}

// addLearner announces a member by its peer URL, as a learner, and returns
// the members with it. A member that already has that peer URL is kept,
// as kubeadm's addMember does on a retried join.
func (e *etcdClient) addLearner(ctx context.Context, peer string) ([]etcdMember, error) {
	ms, err := e.members(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if len(m.PeerURLs) > 0 && m.PeerURLs[0] == peer {
			return ms, nil
		}
	}
	var out struct {
		Members []etcdMember `json:"members"`
	}
	err = e.call(ctx, "/v3/cluster/member/add", map[string]any{"peerURLs": []string{peer}, "isLearner": true}, &out)
	return out.Members, err
}

func (e *etcdClient) promote(ctx context.Context, id etcdID) error {
	var out struct{}
	return e.call(ctx, "/v3/cluster/member/promote", map[string]any{"ID": id}, &out)
}

func (e *etcdClient) remove(ctx context.Context, id etcdID) error {
	var out struct{}
	return e.call(ctx, "/v3/cluster/member/remove", map[string]any{"ID": id}, &out)
}

func (e *etcdClient) close() { e.hc.CloseIdleConnections() }
