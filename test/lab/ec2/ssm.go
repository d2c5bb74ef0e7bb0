package ec2

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// serveSSM answers the AWS JSON 1.1 protocol of SSM for GetParameter on the
// public AMI parameters (the ones under /aws/service/).
func (s *Server) serveSSM(w http.ResponseWriter, r *http.Request, target string) {
	reqID := newRequestID()
	op := strings.TrimPrefix(target, "AmazonSSM.")
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
	fail := func(status int, code, msg string) {
		s.logf("ssm %s -> %d %s", op, status, code)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("x-amzn-RequestId", reqID)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
	}
	body, err := readBody(r)
	if err != nil {
		fail(http.StatusBadRequest, "SerializationException", "the request body could not be read")
		return
	}
	if e := s.authenticate(r, body, "ssm"); e != nil {
		fail(e.Status, e.Code, e.Message)
		return
	}
	if !strings.HasPrefix(target, "AmazonSSM.") || op != "GetParameter" {
		fail(http.StatusBadRequest, "UnknownOperationException", "")
		return
	}
	var in struct {
		Name           string
		WithDecryption bool
	}
	if err := json.Unmarshal(body, &in); err != nil {
		fail(http.StatusBadRequest, "SerializationException", "Start of structure or map found where not expected.")
		return
	}
	if e := s.faultFor(r.Context(), op, url.Values{"Name": {in.Name}}); e != nil {
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
	var found *image
	for _, im := range s.st.images {
		if im.ssm == in.Name {
			found = im
		}
	}
	s.mu.Unlock()
	if found == nil {
		fail(http.StatusBadRequest, "ParameterNotFound", "")
		return
	}
	s.logf("ssm %s -> 200", op)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-RequestId", reqID)
	_ = json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{
		"ARN":              "arn:aws:ssm:" + s.opts.Region + "::parameter" + in.Name,
		"DataType":         "text",
		"LastModifiedDate": float64(time.Date(2026, 9, 10, 0, 0, 0, 0, time.UTC).Unix()),
		"Name":             in.Name,
		"Type":             "String",
		"Value":            found.id,
		"Version":          42,
	}})
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
