package pki

import (
	"encoding/base64"
	"fmt"
	"time"

	"sigs.k8s.io/yaml"
)

// AdminGroup is the group kubeadm binds to cluster-admin. Unlike
// system:masters it goes through RBAC, so access can be revoked.
const AdminGroup = "kubeadm:cluster-admins"

// AdminValidity bounds how long a handed-out admin kubeconfig works.
const AdminValidity = 365 * 24 * time.Hour

type kubeconfig struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []namedCluster `json:"clusters"`
	Users          []namedUser    `json:"users"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
}

type namedCluster struct {
	Name    string `json:"name"`
	Cluster struct {
		Server                   string `json:"server"`
		CertificateAuthorityData string `json:"certificate-authority-data"`
	} `json:"cluster"`
}

type namedUser struct {
	Name string `json:"name"`
	User struct {
		ClientCertificateData string `json:"client-certificate-data"`
		ClientKeyData         string `json:"client-key-data"`
	} `json:"user"`
}

type namedContext struct {
	Name    string `json:"name"`
	Context struct {
		Cluster string `json:"cluster"`
		User    string `json:"user"`
	} `json:"context"`
}

// AdminKubeconfig issues an admin client certificate and returns a
// kubeconfig for server ("https://host:port"). Secret: it holds the key.
func (ca *CA) AdminKubeconfig(cluster, server string, now time.Time) ([]byte, error) {
	certPEM, keyPEM, err := ca.ClientCert(cluster+"-admin", []string{AdminGroup}, AdminValidity, now)
	if err != nil {
		return nil, err
	}
	user := cluster + "-admin"
	var kc kubeconfig
	kc.APIVersion, kc.Kind, kc.CurrentContext = "v1", "Config", user+"@"+cluster
	var c namedCluster
	c.Name = cluster
	c.Cluster.Server = server
	c.Cluster.CertificateAuthorityData = base64.StdEncoding.EncodeToString(ca.CertPEM())
	var u namedUser
	u.Name = user
	u.User.ClientCertificateData = base64.StdEncoding.EncodeToString(certPEM)
	u.User.ClientKeyData = base64.StdEncoding.EncodeToString(keyPEM)
	var x namedContext
	x.Name = kc.CurrentContext
	x.Context.Cluster, x.Context.User = cluster, user
	kc.Clusters, kc.Users, kc.Contexts = []namedCluster{c}, []namedUser{u}, []namedContext{x}
	out, err := yaml.Marshal(kc)
	if err != nil {
		return nil, fmt.Errorf("failed to write the admin kubeconfig of cluster %q: %w", cluster, err)
	}
	return out, nil
}
