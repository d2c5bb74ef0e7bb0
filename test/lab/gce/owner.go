package gce

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// OwnerNetwork makes, as a network's owner would through Compute's API, a
// custom-mode VPC network (unless it exists) and a subnetwork of it over
// cidr in the server's region, labelled by no cluster, and returns once both exist:
// the existing network a cluster is then placed in (gcp.network,
// gcp.subnetwork).
func (s *Server) OwnerNetwork(ctx context.Context, network, subnetwork, cidr string) error {
	return s.OwnerNetworkIn(ctx, s.Project(), network, subnetwork, cidr)
}

// OwnerNetworkIn is OwnerNetwork in project: the server's own, or a Shared
// VPC host project (OwnerSharedVPC), whose owner makes it there.
func (s *Server) OwnerNetworkIn(ctx context.Context, project, network, subnetwork, cidr string) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CACertPEM())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, Timeout: 10 * time.Second}
	base := s.URL() + "/compute/v1/projects/" + project
	call := func(method, url, body string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		if s.opts.Token != "" {
			req.Header.Set("Authorization", "Bearer "+s.opts.Token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	// create inserts and waits until a GET finds the object (its operation is done).
	create := func(collection, name, body string) error {
		if code, out, err := call(http.MethodPost, base+collection, body); err != nil || code != http.StatusOK {
			return fmt.Errorf("insert %s %s: %d %s %v", collection, name, code, out, err)
		}
		for {
			code, _, err := call(http.MethodGet, base+collection+"/"+name, "")
			if err == nil && code == http.StatusOK {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s %s never appeared: %w", collection, name, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	// A network that exists gets one more subnetwork.
	if code, _, err := call(http.MethodGet, base+"/global/networks/"+network, ""); err != nil || code != http.StatusOK {
		if err := create("/global/networks", network, fmt.Sprintf(`{"name":%q,"autoCreateSubnetworks":false}`, network)); err != nil {
			return err
		}
	}
	return create("/regions/"+s.Region()+"/subnetworks", subnetwork,
		fmt.Sprintf(`{"name":%q,"network":"projects/%s/global/networks/%s","ipCidrRange":%q}`, subnetwork, project, network, cidr))
}

// HasNetwork reports whether the project has the VPC network and, when
// subnetwork is set, that subnetwork of it.
func (s *Server) HasNetwork(network, subnetwork string) bool {
	return s.HasNetworkIn(s.Project(), network, subnetwork)
}

// HasNetworkIn is HasNetwork in project (a Shared VPC host's, say).
func (s *Server) HasNetworkIn(project, network, subnetwork string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	nw := s.st.networks[s.key(project, network)]
	if nw == nil {
		return false
	}
	sub := s.st.subnetworks[s.key(project, subnetwork)]
	return subnetwork == "" || (sub != nil && sub.GetNetwork() == nw.GetSelfLink())
}
