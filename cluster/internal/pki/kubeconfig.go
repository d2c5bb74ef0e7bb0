package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"sigs.k8s.io/yaml"
)

// AdminGroup is the group kubeadm binds to cluster-admin. Unlike
// system:masters it goes through RBAC, so access can be revoked.
const AdminGroup = "kubeadm:cluster-admins"

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

// AdminKubeconfig issues an admin client certificate valid for validity from
// now and returns a kubeconfig for server ("https://host:port"). Secret: it
// holds the key.
func (ca *CA) AdminKubeconfig(cluster, server string, validity time.Duration, now time.Time) ([]byte, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("admin kubeconfig of cluster %q: validity %s is not positive; fix: pass how long the kubeconfig must work", cluster, validity)
	}
	certPEM, keyPEM, err := ca.ClientCert(adminCN(cluster, now), []string{AdminGroup}, validity, now)
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

// Credentials are the admin client certificate and key a kubeconfig holds.
type Credentials struct {
	CertPEM, KeyPEM     string
	NotBefore, NotAfter time.Time
	// User is the certificate's common name: the user the API server's
	// audit log names.
	User string
}

// adminCN is one admin certificate's user name, its own for every issuance
// so the audit log tells apart who used which (the API server takes the CN
// as the user name:
// https://kubernetes.io/docs/reference/access-authn-authz/authentication/#x509-client-certificates).
func adminCN(cluster string, now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on supported platforms
	return fmt.Sprintf("%s-admin-%s-%s", cluster, now.UTC().Format("20060102T1504Z"), hex.EncodeToString(b[:]))
}

// KubeconfigCredentials reads the first user's client certificate and key
// from a kubeconfig.
func KubeconfigCredentials(raw []byte) (Credentials, error) {
	var kc kubeconfig
	if err := yaml.Unmarshal(raw, &kc); err != nil {
		return Credentials{}, fmt.Errorf("kubeconfig does not parse: %w", err)
	}
	if len(kc.Users) == 0 || kc.Users[0].User.ClientCertificateData == "" {
		return Credentials{}, errors.New("kubeconfig has no client certificate")
	}
	certPEM, err := base64.StdEncoding.DecodeString(kc.Users[0].User.ClientCertificateData)
	if err != nil {
		return Credentials{}, fmt.Errorf("kubeconfig client certificate is not base64: %w", err)
	}
	keyPEM, err := base64.StdEncoding.DecodeString(kc.Users[0].User.ClientKeyData)
	if err != nil {
		return Credentials{}, errors.New("kubeconfig client key is not base64")
	}
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return Credentials{}, errors.New("kubeconfig client certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return Credentials{}, fmt.Errorf("kubeconfig client certificate: %w", err)
	}
	return Credentials{CertPEM: string(certPEM), KeyPEM: string(keyPEM), NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, User: cert.Subject.CommonName}, nil
}
