package ec2

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// parameter is one SSM parameter a client stored (the cluster's secrets).
type parameter struct {
	name, value, typ, tier string
	// keyID is the ARN of the KMS key a SecureString is encrypted with,
	// or DefaultSSMKey.
	keyID    string
	tags     map[string]string
	version  int64
	modified time.Time
}

// ssmMaxValue is SSM's limit on a parameter value: 4 KB standard, 8 KB advanced.
func ssmMaxValue(tier string) int {
	if tier == "Standard" {
		return 4096
	}
	return 8192
}

// serveSSM answers the AWS JSON 1.1 protocol of SSM: the public AMI
// parameters under /aws/service/, and a parameter store for the clusters'
// own SecureString parameters.
func (s *Server) serveSSM(w http.ResponseWriter, r *http.Request, target string) {
	reqID := newRequestID()
	op := strings.TrimPrefix(target, "AmazonSSM.")
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
	reply := func(status int, body any) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("x-amzn-RequestId", reqID)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
	fail := func(status int, code, msg string) {
		s.logf("ssm %s -> %d %s", op, status, code)
		reply(status, map[string]string{"__type": code, "message": msg})
	}
	body, err := readBody(r)
	if err != nil {
		fail(http.StatusBadRequest, "SerializationException", "the request body could not be read")
		return
	}
	if e := s.authenticate(r, body, "ssm", op); e != nil {
		fail(e.Status, e.Code, e.Message)
		return
	}
	var in struct {
		Name           string
		Names          []string
		Path           string
		Recursive      bool
		NextToken      string
		MaxResults     int
		Value          string
		Type           string
		Tier           string
		Overwrite      bool
		WithDecryption bool
		KeyId          string //nolint:revive // SSM's member name
		Tags           []struct{ Key, Value string }
	}
	if err := json.Unmarshal(body, &in); err != nil {
		fail(http.StatusBadRequest, "SerializationException", "Start of structure or map found where not expected.")
		return
	}
	if e := s.faultFor(r.Context(), op, url.Values{"Name": {in.Name + in.Path}}); e != nil {
		code := e.Code
		if code == "RequestLimitExceeded" {
			code = "ThrottlingException" // SSM's name for the same thing
		}
		if code == "UnauthorizedOperation" {
			code = "AccessDeniedException"
		}
		fail(e.Status, code, e.Message)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op {
	case "GetParameter":
		if p := s.st.params[in.Name]; p != nil {
			s.logf("ssm %s -> 200", op)
			reply(http.StatusOK, map[string]any{"Parameter": p.wire(s.opts.Region, in.WithDecryption)})
			return
		}
		for _, im := range s.st.images {
			if im.ssm == in.Name {
				s.logf("ssm %s -> 200", op)
				reply(http.StatusOK, map[string]any{"Parameter": map[string]any{
					"ARN":              "arn:aws:ssm:" + s.opts.Region + "::parameter" + in.Name,
					"DataType":         "text",
					"LastModifiedDate": float64(time.Date(2026, 9, 10, 0, 0, 0, 0, time.UTC).Unix()),
					"Name":             in.Name,
					"Type":             "String",
					"Value":            im.id,
					"Version":          42,
				}})
				return
			}
		}
		fail(http.StatusBadRequest, "ParameterNotFound", "")
	case "PutParameter":
		if !strings.HasPrefix(in.Name, "/") || strings.HasPrefix(in.Name, "/aws/") || strings.HasPrefix(in.Name, "/ssm/") {
			fail(http.StatusBadRequest, "ValidationException", "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).")
			return
		}
		tier := in.Tier
		if tier == "" || tier == "Intelligent-Tiering" {
			tier = "Standard"
			if len(in.Value) > 4096 {
				tier = "Advanced"
			}
		}
		if len(in.Value) > ssmMaxValue(tier) {
			fail(http.StatusBadRequest, "ValidationException", "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.")
			return
		}
		if in.Overwrite && len(in.Tags) > 0 {
			fail(http.StatusBadRequest, "ValidationException", "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.")
			return
		}
		old := s.st.params[in.Name]
		if old != nil && !in.Overwrite {
			fail(http.StatusBadRequest, "ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
			return
		}
		p := &parameter{name: in.Name, value: in.Value, typ: in.Type, tier: tier, tags: map[string]string{}, version: 1, modified: time.Now()}
		if p.typ == "" {
			p.typ = "String"
		}
		if p.typ == "SecureString" {
			// KeyId: the key SSM encrypts with, else the account's aws/ssm
			// key; a key SSM cannot find is refused with InvalidKeyId
			// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html#API_PutParameter_Errors).
			p.keyID = DefaultSSMKey
			if in.KeyId != "" {
				arn, ok := s.resolveKey(in.KeyId)
				if !ok {
					fail(http.StatusBadRequest, "InvalidKeyId", "The query key ID isn't valid.")
					return
				}
				p.keyID = arn
			}
		}
		if old != nil {
			p.version, p.tags = old.version+1, old.tags
		}
		for _, t := range in.Tags {
			p.tags[t.Key] = t.Value
		}
		s.st.params[in.Name] = p
		s.logf("ssm %s %s -> 200", op, in.Name)
		reply(http.StatusOK, map[string]any{"Tier": tier, "Version": p.version})
	case "GetParametersByPath":
		path := strings.TrimSuffix(in.Path, "/") + "/"
		var names []string
		for name := range s.st.params {
			rest, ok := strings.CutPrefix(name, path)
			if ok && (in.Recursive || !strings.Contains(rest, "/")) {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		page := in.MaxResults
		if page <= 0 || page > 10 {
			page = 10
		}
		start := 0
		if in.NextToken != "" {
			start = sort.SearchStrings(names, in.NextToken)
		}
		var out []any
		next := ""
		for i := start; i < len(names); i++ {
			if len(out) == page {
				next = names[i]
				break
			}
			out = append(out, s.st.params[names[i]].wire(s.opts.Region, in.WithDecryption))
		}
		resp := map[string]any{"Parameters": out}
		if next != "" {
			resp["NextToken"] = next
		}
		reply(http.StatusOK, resp)
	case "DeleteParameter":
		if s.st.params[in.Name] == nil {
			fail(http.StatusBadRequest, "ParameterNotFound", "")
			return
		}
		delete(s.st.params, in.Name)
		reply(http.StatusOK, map[string]any{})
	case "DeleteParameters":
		if len(in.Names) > 10 {
			fail(http.StatusBadRequest, "ValidationException", "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10")
			return
		}
		deleted, invalid := []string{}, []string{}
		for _, n := range in.Names {
			if s.st.params[n] == nil {
				invalid = append(invalid, n)
				continue
			}
			delete(s.st.params, n)
			deleted = append(deleted, n)
		}
		reply(http.StatusOK, map[string]any{"DeletedParameters": deleted, "InvalidParameters": invalid})
	default:
		fail(http.StatusBadRequest, "UnknownOperationException", "")
	}
}

// wire is the parameter as SSM returns it; a SecureString is shown only decrypted on request.
func (p *parameter) wire(region string, decrypt bool) map[string]any {
	value := p.value
	if p.typ == "SecureString" && !decrypt {
		value = "AQICAHh" + strings.Repeat("x", 40) // ciphertext stands in
	}
	return map[string]any{
		"ARN":              "arn:aws:ssm:" + region + ":" + AccountID + ":parameter" + p.name,
		"DataType":         "text",
		"LastModifiedDate": float64(p.modified.Unix()),
		"Name":             p.name,
		"Type":             p.typ,
		"Value":            value,
		"Version":          p.version,
	}
}

// Parameter is a stored SSM parameter as the inspection API shows it,
// without its value.
type Parameter struct {
	Name, Type string
	// KeyID is the ARN of the KMS key a SecureString is encrypted with, or DefaultSSMKey.
	KeyID string
	Tags  map[string]string
}

// Parameters lists the parameters clients stored, by name.
func (s *Server) Parameters() []Parameter {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Parameter
	for _, name := range sortedKeys(s.st.params) {
		p := s.st.params[name]
		out = append(out, Parameter{Name: p.name, Type: p.typ, KeyID: p.keyID, Tags: mapsClone(p.tags)})
	}
	return out
}

// ImageID returns the AMI the SSM public parameter name points to, and
// false for an unknown parameter.
func (s *Server) ImageID(parameter string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, im := range s.st.images {
		if im.ssm == parameter {
			return im.id, true
		}
	}
	return "", false
}
