package arm

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Federation is a federated identity credential of an application: the
// external issuer and subject whose tokens the application accepts, and
// the issuer's signing key. Entra ID reads the key from the issuer's
// OpenID configuration and JWKS
// (https://learn.microsoft.com/entra/workload-id/workload-identity-federation);
// the lab is given it.
type Federation struct {
	Issuer, Subject string
	Key             *rsa.PublicKey
}

// jwt is a compact JWS (RFC 7515) with a JSON payload (RFC 7519).
type jwt struct {
	header, claims map[string]any
	signed         string // header.payload
	sig            []byte
}

func parseJWT(s string) (jwt, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return jwt{}, errors.New("not three parts")
	}
	var j jwt
	for i, dst := range []*map[string]any{&j.header, &j.claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return jwt{}, err
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return jwt{}, err
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return jwt{}, err
	}
	j.signed, j.sig = parts[0]+"."+parts[1], sig
	return j, nil
}

// audiences is the aud claim, a string or an array (RFC 7519 section 4.1.3).
func (j jwt) audiences() []string {
	switch a := j.claims["aud"].(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, v := range a {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// verify checks the signature with an RSA key: RS256 or PS256, the
// algorithms MSAL and Kubernetes' service account tokens sign with
// (RFC 7518 section 3.3 and 3.5).
func (j jwt) verify(key any) error {
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return errors.New("not an RSA key")
	}
	h := sha256.Sum256([]byte(j.signed))
	switch j.header["alg"] {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], j.sig)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, h[:], j.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	}
	return errors.New("unsupported alg")
}

// current reports whether now is within nbf and exp, with five minutes'
// leeway for clock skew; a token without exp is not current.
func (j jwt) current() bool {
	now := time.Now()
	const skew = 5 * time.Minute
	exp, ok := j.claims["exp"].(float64)
	if !ok || now.After(time.Unix(int64(exp), 0).Add(skew)) {
		return false
	}
	if nbf, ok := j.claims["nbf"].(float64); ok && now.Add(skew).Before(time.Unix(int64(nbf), 0)) {
		return false
	}
	return true
}

// SignFederatedToken signs claims with key (RS256) as an external identity
// provider signs the token a workload then presents: the lab's stand-in
// for a Kubernetes service account token or a CI system's OIDC token.
func SignFederatedToken(key *rsa.PrivateKey, claims map[string]any) (string, error) {
	enc := func(v any) (string, error) {
		b, err := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b), err
	}
	h, err := enc(map[string]any{"alg": "RS256", "typ": "JWT"})
	if err != nil {
		return "", err
	}
	c, err := enc(claims)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(h + "." + c))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return h + "." + c + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
