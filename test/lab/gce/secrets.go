package gce

import (
	"fmt"
	"hash/crc32"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Secret Manager rules: secret IDs are [a-zA-Z0-9_-]{1,255}
// (secretmanagerpb CreateSecretRequest.secret_id), replication is required
// (Secret.replication), a payload is at most 64 KiB
// (https://cloud.google.com/secret-manager/quotas) and a given data_crc32c
// must match the data (SecretPayload.data_crc32c).
var secretIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)

const maxPayload = 64 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// secretName is how the service names a secret in replies: by project number.
func secretName(id string) string { return "projects/" + ProjectNumber + "/secrets/" + id }

func smError(status int, msg string) *Error {
	return &Error{Status: status, Reason: statusName(&Error{Status: status}), Message: msg}
}

func (s *Server) createSecret(r *http.Request, c *call) (proto.Message, *Error, func()) {
	id := r.URL.Query().Get("secretId")
	if !secretIDRE.MatchString(id) {
		return nil, smError(http.StatusBadRequest, fmt.Sprintf("Secret id [%s] does not match the expected format.", id)), nil
	}
	sec := &secretmanagerpb.Secret{}
	if e := readProto(r, sec); e != nil {
		return nil, e, nil
	}
	if sec.GetReplication() == nil {
		return nil, smError(http.StatusBadRequest, "Secret.replication is required."), nil
	}
	if e := checkReplication(sec.GetReplication()); e != nil {
		return nil, e, nil
	}
	if e := validateLabels("secret.labels", sec.GetLabels()); e != nil {
		return nil, smError(http.StatusBadRequest, e.Message), nil
	}
	if s.st.secrets[id] != nil {
		return nil, smError(http.StatusConflict, fmt.Sprintf("Secret [%s] already exists.", secretName(id))), nil
	}
	sec.Name = secretName(id)
	sec.CreateTime = timestamppb.Now()
	s.st.secrets[id] = &secret{pb: sec}
	return clone(sec), nil, nil
}

func (s *Server) getSecret(r *http.Request, c *call) (proto.Message, *Error, func()) {
	sec := s.st.secrets[c.name]
	if sec == nil {
		return nil, smError(http.StatusNotFound, fmt.Sprintf("Secret [%s] not found.", secretName(c.name))), nil
	}
	return clone(sec.pb), nil, nil
}

func (s *Server) deleteSecret(r *http.Request, c *call) (proto.Message, *Error, func()) {
	if s.st.secrets[c.name] == nil {
		return nil, smError(http.StatusNotFound, fmt.Sprintf("Secret [%s] not found.", secretName(c.name))), nil
	}
	delete(s.st.secrets, c.name)
	return &emptypb.Empty{}, nil, nil
}

func (s *Server) addVersion(r *http.Request, c *call) (proto.Message, *Error, func()) {
	sec := s.st.secrets[c.name]
	if sec == nil {
		return nil, smError(http.StatusNotFound, fmt.Sprintf("Secret [%s] not found.", secretName(c.name))), nil
	}
	req := &secretmanagerpb.AddSecretVersionRequest{}
	if e := readProto(r, req); e != nil {
		return nil, e, nil
	}
	p := req.GetPayload()
	if len(p.GetData()) > maxPayload {
		return nil, smError(http.StatusBadRequest, "Secret payload data exceeds the maximum size of 65536 bytes."), nil
	}
	if p.DataCrc32C != nil && int64(crc32.Checksum(p.GetData(), castagnoli)) != p.GetDataCrc32C() {
		return nil, smError(http.StatusBadRequest, "Checksum mismatch: the data_crc32c of the payload does not match its data."), nil
	}
	sec.versions = append(sec.versions, &secretmanagerpb.SecretPayload{Data: p.GetData(), DataCrc32C: proto.Int64(int64(crc32.Checksum(p.GetData(), castagnoli)))})
	n := len(sec.versions)
	return &secretmanagerpb.SecretVersion{
		Name: secretName(c.name) + "/versions/" + strconv.Itoa(n), CreateTime: timestamppb.New(time.Now()),
		State: secretmanagerpb.SecretVersion_ENABLED,
	}, nil, nil
}

func (s *Server) accessVersion(r *http.Request, c *call) (proto.Message, *Error, func()) {
	sec := s.st.secrets[c.name]
	missing := smError(http.StatusNotFound, fmt.Sprintf("Secret Version [%s/versions/%s] not found.", secretName(c.name), c.version))
	if sec == nil {
		return nil, missing, nil
	}
	n := len(sec.versions)
	if c.version != "latest" {
		v, err := strconv.Atoi(c.version)
		if err != nil || v < 1 {
			return nil, smError(http.StatusBadRequest, fmt.Sprintf("Invalid version [%s].", c.version)), nil
		}
		n = v
	}
	if n < 1 || n > len(sec.versions) {
		return nil, missing, nil
	}
	return &secretmanagerpb.AccessSecretVersionResponse{Name: secretName(c.name) + "/versions/" + strconv.Itoa(n), Payload: clone(sec.versions[n-1])}, nil, nil
}

// listSecrets supports the filters "labels.KEY=VALUE" and
// "labels.KEY:VALUE" (https://cloud.google.com/secret-manager/docs/filtering)
// and pageSize/pageToken paging.
func (s *Server) listSecrets(r *http.Request, c *call) (proto.Message, *Error, func()) {
	q := r.URL.Query()
	var key, val string
	if f := strings.TrimSpace(q.Get("filter")); f != "" {
		m := regexp.MustCompile(`^labels\.([a-z][a-z0-9_-]*)\s*[=:]\s*"?([a-z0-9_-]*)"?$`).FindStringSubmatch(f)
		if m == nil {
			return nil, smError(http.StatusBadRequest, fmt.Sprintf("Invalid filter: %s", f)), nil
		}
		key, val = m[1], m[2]
	}
	var ids []string
	for id, sec := range s.st.secrets {
		if key == "" || sec.pb.GetLabels()[key] == val {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	all := make([]*secretmanagerpb.Secret, 0, len(ids))
	for _, id := range ids {
		all = append(all, clone(s.st.secrets[id].pb))
	}
	// Secret Manager's pageSize is at most 25000; pageOf reads maxResults.
	qq := r.URL.Query()
	if ps := qq.Get("pageSize"); ps != "" {
		n, _ := strconv.Atoi(ps)
		qq.Set("maxResults", strconv.Itoa(min(n, maxResults)))
	}
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = qq.Encode()
	page, next, e := pageOf(r2, all)
	if e != nil {
		return nil, smError(http.StatusBadRequest, e.Message), nil
	}
	return &secretmanagerpb.ListSecretsResponse{Secrets: page, NextPageToken: next, TotalSize: int32(len(all))}, nil, nil
}

// checkReplication holds a secret's replication to Secret Manager's
// rules: a user-managed policy lists at least one replica, each with a
// location; a replica's customer-managed key is a Cloud KMS key of the
// replica's own location, and an automatic policy's key is global
// (secretmanagerpb Replication.UserManaged.replicas and
// CustomerManagedEncryption.kms_key_name).
func checkReplication(r *secretmanagerpb.Replication) *Error {
	checkKey := func(field, name, want string) *Error {
		loc, ok := kmsLocation(name)
		if !ok {
			return smError(http.StatusBadRequest, fmt.Sprintf("%s [%s] is not a valid Cloud KMS key name; expected projects/*/locations/*/keyRings/*/cryptoKeys/*.", field, name))
		}
		if loc != want {
			return smError(http.StatusBadRequest, fmt.Sprintf("%s [%s] is in location [%s]; it must reside in [%s].", field, name, loc, want))
		}
		return nil
	}
	if a := r.GetAutomatic(); a != nil {
		if cme := a.GetCustomerManagedEncryption(); cme != nil {
			return checkKey("Replication.automatic.customer_managed_encryption.kms_key_name", cme.GetKmsKeyName(), "global")
		}
		return nil
	}
	um := r.GetUserManaged()
	if um == nil || len(um.GetReplicas()) == 0 {
		return smError(http.StatusBadRequest, "Replication.user_managed.replicas must have at least one replica.")
	}
	for i, rep := range um.GetReplicas() {
		if rep.GetLocation() == "" {
			return smError(http.StatusBadRequest, fmt.Sprintf("Replication.user_managed.replicas[%d].location is required.", i))
		}
		if cme := rep.GetCustomerManagedEncryption(); cme != nil {
			if e := checkKey(fmt.Sprintf("Replication.user_managed.replicas[%d].customer_managed_encryption.kms_key_name", i), cme.GetKmsKeyName(), rep.GetLocation()); e != nil {
				return e
			}
		}
	}
	return nil
}
