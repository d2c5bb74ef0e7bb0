package gce

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// authority is the emulator's own CA and the server certificate it signed
// for 127.0.0.1 and localhost.
type authority struct {
	certPEM []byte
	server  tls.Certificate
}

func newAuthority() (*authority, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mixedk8s lab Compute Engine CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	return &authority{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		server:  tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key},
	}, nil
}

// writeProto answers with protojson, as the REST API does: int64 and
// uint64 fields as JSON strings (https://protobuf.dev/programming-guides/json/).
// Secret Manager's client asks for enum numbers with
// $alt=json;enum-encoding=int (secretmanager apiv1 secret_manager_client.go).
func writeProto(w http.ResponseWriter, r *http.Request, m proto.Message) {
	opts := protojson.MarshalOptions{UseEnumNumbers: strings.Contains(r.URL.Query().Get("$alt"), "enum-encoding=int")}
	b, err := opts.Marshal(m)
	if err != nil {
		writeError(w, &Error{Status: http.StatusInternalServerError, Reason: "internalError", Message: "marshal: " + err.Error()}, false)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	w.Write(b) //nolint:errcheck // the client sees a short body
}

// writeError answers in Compute's shape, {"error": {code, message,
// errors: [{message, domain, reason}]}}, or for Secret Manager in the
// google.rpc.Status shape, {"error": {code, message, status, details}}
// (https://cloud.google.com/apis/design/errors#http_mapping).
func writeError(w http.ResponseWriter, e *Error, secretManager bool) {
	body := map[string]any{"code": e.Status, "message": e.Message}
	if secretManager {
		body["status"] = statusName(e)
		if len(e.Details) > 0 {
			body["details"] = e.Details
		}
	} else {
		body["errors"] = []map[string]string{{"message": e.Message, "domain": "global", "reason": e.Reason}}
		if len(e.Details) > 0 {
			body["details"] = e.Details
		}
	}
	b, _ := json.Marshal(map[string]any{"error": body})
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(e.Status)
	w.Write(b) //nolint:errcheck // the client sees a short body
}

// statusName is the google.rpc.Code name of an HTTP status.
func statusName(e *Error) string {
	if strings.ToUpper(e.Reason) == e.Reason && e.Reason != "" {
		return e.Reason
	}
	switch e.Status {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 409:
		return "ALREADY_EXISTS"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 503:
		return "UNAVAILABLE"
	}
	return "INTERNAL"
}

// readProto decodes a request body; unknown fields are refused, as the
// real API refuses them with 400 ("Invalid JSON payload received. Unknown name").
func readProto(r *http.Request, m proto.Message) *Error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return badRequest("invalid", "The request body could not be read")
	}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(b, m); err != nil {
		return badRequest("invalid", "Invalid JSON payload received. "+err.Error())
	}
	return nil
}

func badRequest(reason, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Reason: reason, Message: msg}
}

func invalidField(field, value string) *Error {
	return badRequest("invalid", "Invalid value for field '"+field+"': '"+value+"'.")
}

func notFound(resource string) *Error {
	return &Error{Status: http.StatusNotFound, Reason: "notFound", Message: "The resource '" + resource + "' was not found"}
}

func alreadyExists(resource string) *Error {
	return &Error{Status: http.StatusConflict, Reason: "alreadyExists", Message: "The resource '" + resource + "' already exists"}
}

// dropConnection ends the reply before a byte is written: the request
// took effect, and the client sees the connection (HTTP/1.1) or the stream
// (HTTP/2, RST_STREAM) end without an answer.
func dropConnection() {
	panic(http.ErrAbortHandler)
}
