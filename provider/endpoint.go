package provider

import (
	"encoding/base64"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// endpointAttrs are how clients reach the API server, in the forms the
// kubernetes and helm providers take without a kubeconfig file.
type endpointAttrs struct {
	APIEndpoint         types.String `tfsdk:"api_endpoint"`
	Host                types.String `tfsdk:"host"`
	CACertificate       types.String `tfsdk:"ca_certificate"`
	CACertificateBase64 types.String `tfsdk:"ca_certificate_base64"`
}

// credentialAttrs are a kubeconfig's client certificate and key, for
// providers that take them instead of a kubeconfig file.
type credentialAttrs struct {
	ClientCertificate types.String `tfsdk:"client_certificate"`
	ClientKey         types.String `tfsdk:"client_key"`
}

// Descriptions shared by the resource, the data source and the ephemeral resource.
const (
	descAPIEndpoint         = "The API server as `host:port`."
	descHost                = "The API server as an `https://` URL: the kubernetes and helm providers' `host`."
	descCACertificate       = "PEM certificate of the cluster CA that signs the API server's certificate: the kubernetes and helm providers' `cluster_ca_certificate`."
	descCACertificateBase64 = "The CA certificate as base64-encoded PEM, as a kubeconfig's `certificate-authority-data` holds it."
	descClientCertificate   = "PEM client certificate of the admin kubeconfig: the kubernetes and helm providers' `client_certificate`."
	descClientKey           = "PEM private key of the admin kubeconfig: the kubernetes and helm providers' `client_key`."
)

// endpointOf returns the attributes of ep, all null while there is none.
func endpointOf(ep *cluster.Endpoint) endpointAttrs {
	if ep == nil {
		return endpointAttrs{types.StringNull(), types.StringNull(), types.StringNull(), types.StringNull()}
	}
	return endpointAttrs{
		APIEndpoint:         types.StringValue(ep.APIEndpoint),
		Host:                types.StringValue("https://" + ep.APIEndpoint),
		CACertificate:       types.StringValue(ep.CACertPEM),
		CACertificateBase64: types.StringValue(base64.StdEncoding.EncodeToString([]byte(ep.CACertPEM))),
	}
}

func unknownEndpoint() endpointAttrs {
	return endpointAttrs{types.StringUnknown(), types.StringUnknown(), types.StringUnknown(), types.StringUnknown()}
}

// credentialsOf reads the client certificate and key from a kubeconfig
// attribute: null when it is null, unknown when it is unknown.
func credentialsOf(kc types.String) (credentialAttrs, time.Time, error) {
	switch {
	case kc.IsUnknown():
		return credentialAttrs{types.StringUnknown(), types.StringUnknown()}, time.Time{}, nil
	case kc.IsNull():
		return credentialAttrs{types.StringNull(), types.StringNull()}, time.Time{}, nil
	}
	c, err := cluster.ReadKubeconfig([]byte(kc.ValueString()))
	if err != nil {
		return credentialAttrs{types.StringNull(), types.StringNull()}, time.Time{}, err
	}
	return credentialAttrs{types.StringValue(c.CertPEM), types.StringValue(c.KeyPEM)}, c.NotAfter, nil
}
