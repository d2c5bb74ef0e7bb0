package ec2

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
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
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mixedk8s lab EC2 CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
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
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
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

// authenticate checks a SigV4 Authorization header: the access key must be
// configured or belong to a live STS session (sts.go) and, as on AWS, the
// signature must match the request. It records who made the call.
func (s *Server) authenticate(r *http.Request, body []byte, service, action string) *Error {
	query := service == "elasticloadbalancing" || service == "sts" // awsquery services answer alike
	authz := r.Header.Get("Authorization")
	unknownKey := func() *Error {
		if query {
			return errf(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		}
		if service == "ssm" {
			return errf(http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
		}
		return errf(http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
	}
	if authz == "" {
		if len(s.opts.Credentials) == 0 {
			s.noteCaller(UserARN, action)
			return nil
		}
		if service == "ssm" {
			return errf(http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
		}
		if query {
			return errf(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
		}
		return errf(http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
	}
	algo, rest, _ := strings.Cut(authz, " ")
	if algo != "AWS4-HMAC-SHA256" {
		return unknownKey()
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 {
		return unknownKey()
	}
	principal := UserARN
	secret, ok := s.opts.Credentials[cred[0]]
	if sess, found := s.session(cred[0]); found {
		// Temporary credentials need their session token beside the key
		// (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_use-resources.html).
		if r.Header.Get("X-Amz-Security-Token") != sess.token {
			return unknownKey()
		}
		if !s.clock().Before(sess.expires) {
			return expiredToken(service)
		}
		secret, ok, principal = sess.secret, true, sess.arn
	} else if len(s.opts.Credentials) == 0 {
		s.noteCaller(principal, action)
		return nil
	}
	if !ok {
		return unknownKey()
	}
	if sigV4(r, body, secret, cred[1:], fields["SignedHeaders"]) != fields["Signature"] {
		if query {
			return errf(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		}
		if service == "ssm" {
			return errf(http.StatusBadRequest, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")
		}
		return errf(http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
	}
	s.noteCaller(principal, action)
	return nil
}

// expiredToken is each service's answer to expired temporary credentials:
// EC2's RequestExpired ("If you're using temporary security credentials,
// this error can also occur if the credentials have expired",
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html),
// ExpiredTokenException, HTTP 403, elsewhere (the common errors of
// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/CommonErrors.html,
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/CommonErrors.html,
// https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html).
func expiredToken(service string) *Error {
	if service == "ec2" {
		return errf(http.StatusBadRequest, "RequestExpired", "Request has expired.")
	}
	return errf(http.StatusForbidden, "ExpiredTokenException", "The security token included in the request is expired")
}

// sigV4 computes the signature of r as AWS Signature Version 4 defines it;
// scope is date/region/service/aws4_request.
func sigV4(r *http.Request, body []byte, secret string, scope []string, signedHeaders string) string {
	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canon.WriteString(path + "\n")
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var qs []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			qs = append(qs, awsEscape(k)+"="+awsEscape(v))
		}
	}
	canon.WriteString(strings.Join(qs, "&") + "\n")
	for _, h := range strings.Split(signedHeaders, ";") {
		var v string
		switch h {
		case "host":
			v = r.Host
		case "content-length":
			v = fmt.Sprint(r.ContentLength)
		default:
			v = strings.Join(r.Header.Values(h), ",")
		}
		canon.WriteString(h + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	canon.WriteString("\n" + signedHeaders + "\n")
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		sum := sha256.Sum256(body)
		payload = hex.EncodeToString(sum[:])
	}
	canon.WriteString(payload)
	creq := sha256.Sum256([]byte(canon.String()))
	toSign := "AWS4-HMAC-SHA256\n" + r.Header.Get("X-Amz-Date") + "\n" + strings.Join(scope, "/") + "\n" + hex.EncodeToString(creq[:])
	key := []byte("AWS4" + secret)
	for _, part := range scope {
		key = hmacSHA256(key, part)
	}
	return hex.EncodeToString(hmacSHA256(key, toSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func awsEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// writeReply writes <ActionResponse xmlns="..."><requestId>..</requestId>
// followed by the fields of out, as EC2 does.
func writeReply(w http.ResponseWriter, action, reqID string, out any) {
	var inner []byte
	if out != nil {
		var ob bytes.Buffer
		err := xml.NewEncoder(&ob).EncodeElement(out, xml.StartElement{Name: xml.Name{Local: "r"}})
		b := ob.Bytes()
		if err != nil {
			writeError(w, reqID, errf(http.StatusInternalServerError, "InternalError", "An internal error has occurred"))
			return
		}
		// out marshals as <T>fields</T>; EC2 puts the fields directly in the response element.
		if i := bytes.IndexByte(b, '>'); i >= 0 && !bytes.HasSuffix(b[:i+1], []byte("/>")) {
			inner = b[i+1 : bytes.LastIndexByte(b, '<')]
		}
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	fmt.Fprintf(&buf, "<%sResponse xmlns=\"%s\">\n    <requestId>%s</requestId>", action, Namespace, reqID)
	buf.Write(inner)
	fmt.Fprintf(&buf, "</%sResponse>", action)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("x-amzn-RequestId", reqID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// writeError writes EC2's error document:
// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>.
func writeError(w http.ResponseWriter, reqID string, e *Error) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	buf.WriteString("<Response><Errors><Error><Code>")
	buf.WriteString(escapeText(e.Code))
	buf.WriteString("</Code><Message>")
	buf.WriteString(escapeText(e.Message))
	buf.WriteString("</Message></Error></Errors><RequestID>")
	buf.WriteString(reqID)
	buf.WriteString("</RequestID></Response>")
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.Status)
	_, _ = w.Write(buf.Bytes())
}

// escapeText escapes what XML requires and no more: EC2 writes quotes and
// apostrophes in messages as they are.
func escapeText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
