package arm

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// vault is one Key Vault's secrets, with soft delete as every vault has it
// (https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview).
type vault struct {
	secrets map[string]*secret // by lower-case name
	deleted map[string]*secret
}

type secret struct {
	name      string
	versions  []*azsecrets.Secret // oldest first
	deletedAt time.Time
}

// VaultID is the Key Vault's resource ID, in LabKeysGroup: the scope its
// data actions are granted at, or above.
func (s *Server) VaultID() string {
	return s.GroupScope(LabKeysGroup) + "/providers/Microsoft.KeyVault/vaults/" + s.opts.Vault
}

func newVault() *vault { return &vault{secrets: map[string]*secret{}, deleted: map[string]*secret{}} }

// secretNameRE: 1-127 of letters, digits and '-'
// (https://learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates#object-identifiers).
var secretNameRE = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)

// purgeDelay is how long a deleted secret is still being deleted; purge
// answers ObjectIsBeingDeleted meanwhile.
const purgeDelay = 30 * time.Millisecond

// kvError is Key Vault's error shape: {"error":{"code","message","innererror":{"code"}}}
// (https://learn.microsoft.com/azure/key-vault/general/rest-error-codes).
func kvError(w http.ResponseWriter, status int, code, inner, msg string) {
	e := map[string]any{"code": code, "message": msg}
	if inner != "" {
		e["innererror"] = map[string]any{"code": inner}
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func (s *Server) serveVault(w http.ResponseWriter, r *http.Request, name string) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	op := "secrets." + map[string]string{http.MethodPut: "Set", http.MethodGet: "Get", http.MethodDelete: "Delete"}[r.Method]
	switch {
	case parts[0] == "deletedsecrets" && r.Method == http.MethodDelete:
		op = "secrets.Purge"
	case parts[0] == "deletedsecrets" || len(parts) == 1 || len(parts) == 3 && parts[2] == "versions":
		op = "secrets.List"
	}
	s.count(op)
	// The challenge: a request without a token gets 401 naming the
	// authority and the resource to ask a token for; the SDK then retries
	// with one (mod: sdk/security/keyvault/internal challenge_policy.go).
	resource := "https://vault.emu.test:" + s.port()
	tok, ok := s.authenticate(r, resource)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer authorization="`+s.URL()+"/"+s.opts.TenantID+`", resource="`+resource+`"`)
		kvError(w, http.StatusUnauthorized, "Unauthorized", "", "AKV10000: Request is missing a Bearer or PoP token.")
		return
	}
	if name != s.opts.Vault {
		kvError(w, http.StatusNotFound, "VaultNotFound", "", "The vault "+name+" does not exist.")
		return
	}
	if v := r.URL.Query().Get("api-version"); v != KeyVaultAPIVersion {
		kvError(w, http.StatusBadRequest, "BadParameter", "", "The specified version ("+v+") is not recognized. Consider using the latest supported version ("+KeyVaultAPIVersion+").")
		return
	}
	if action := vaultAction(op); !s.permits(tok.clientID, action, s.VaultID(), true) {
		kvError(w, http.StatusForbidden, "Forbidden", "ForbiddenByRbac", "Caller is not authorized to perform action on resource. If role assignments were recently changed, please wait several minutes for role assignments to become effective. Action: '"+action+"'")
		return
	}
	if e := s.injectedFor(op); e != nil {
		kvError(w, e.Status, e.Code, "", e.Message)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	status, out, code, inner, msg := s.vaultAct(r, parts, body)
	s.mu.Unlock()
	if code != "" {
		kvError(w, status, code, inner, msg)
		return
	}
	writeJSON(w, status, out)
}

// vaultAction is the data action a request needs
// (https://learn.microsoft.com/azure/role-based-access-control/permissions/security#microsoftkeyvault).
func vaultAction(op string) string {
	switch op {
	case "secrets.Set":
		return "Microsoft.KeyVault/vaults/secrets/setSecret/action"
	case "secrets.Delete":
		return "Microsoft.KeyVault/vaults/secrets/delete"
	case "secrets.Purge":
		return "Microsoft.KeyVault/vaults/secrets/purge/action"
	case "secrets.List":
		return "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
	}
	return "Microsoft.KeyVault/vaults/secrets/getSecret/action"
}

func (s *Server) secretURL(name, version string) string {
	u := s.VaultURL() + "/secrets/" + name
	if version != "" {
		u += "/" + version
	}
	return u
}

func props(sec *azsecrets.Secret) *azsecrets.SecretProperties {
	return &azsecrets.SecretProperties{Attributes: sec.Attributes, ContentType: sec.ContentType, ID: sec.ID, Tags: sec.Tags}
}

func (s *Server) vaultAct(r *http.Request, parts []string, body []byte) (int, any, string, string, string) {
	v := s.vault
	now := time.Now()
	notFound := func(name string) (int, any, string, string, string) {
		return http.StatusNotFound, nil, "SecretNotFound", "", "A secret with (name/id) " + name + " was not found in this key vault."
	}
	switch {
	case parts[0] == "secrets" && len(parts) == 2 && r.Method == http.MethodPut:
		name := parts[1]
		if !secretNameRE.MatchString(name) {
			return http.StatusBadRequest, nil, "BadParameter", "", "The request URI contains an invalid name: " + name
		}
		if _, gone := v.deleted[strings.ToLower(name)]; gone {
			return http.StatusConflict, nil, "Conflict", "ObjectIsDeletedButRecoverable",
				"Secret " + name + " is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged."
		}
		var in azsecrets.SetSecretParameters
		if err := json.Unmarshal(body, &in); err != nil || in.Value == nil {
			return http.StatusBadRequest, nil, "BadParameter", "", "Property value is required."
		}
		sec := v.secrets[strings.ToLower(name)]
		if sec == nil {
			sec = &secret{name: name}
			v.secrets[strings.ToLower(name)] = sec
		}
		version := strings.ReplaceAll(newID(), "-", "")
		id := azsecrets.ID(s.secretURL(name, version))
		// Created has one-second resolution on the wire (Unix time), as in Key Vault.
		created := now.Truncate(time.Second)
		out := &azsecrets.Secret{ID: &id, Value: in.Value, ContentType: in.ContentType, Tags: in.Tags,
			Attributes: &azsecrets.SecretAttributes{Enabled: ptr(true), Created: &created, Updated: &created, RecoveryLevel: ptr("Recoverable+Purgeable"), RecoverableDays: ptr(int32(90))}}
		sec.versions = append(sec.versions, out)
		return http.StatusOK, out, "", "", ""
	case parts[0] == "secrets" && (len(parts) == 2 || len(parts) == 3 && parts[2] != "versions") && r.Method == http.MethodGet:
		sec := v.secrets[strings.ToLower(parts[1])]
		if sec == nil {
			return notFound(parts[1])
		}
		if len(parts) == 2 || parts[2] == "" {
			return http.StatusOK, sec.versions[len(sec.versions)-1], "", "", ""
		}
		for _, ver := range sec.versions {
			if ver.ID.Version() == parts[2] {
				return http.StatusOK, ver, "", "", ""
			}
		}
		return notFound(parts[1] + "/" + parts[2])
	case parts[0] == "secrets" && len(parts) == 3 && parts[2] == "versions" && r.Method == http.MethodGet:
		sec := v.secrets[strings.ToLower(parts[1])]
		if sec == nil {
			return notFound(parts[1])
		}
		var items []any
		for _, ver := range sec.versions {
			items = append(items, props(ver))
		}
		return s.vaultPage(r, items)
	case parts[0] == "secrets" && len(parts) == 1 && r.Method == http.MethodGet:
		var items []any
		for _, k := range sortedKeys(v.secrets) {
			sec := v.secrets[k]
			p := props(sec.versions[len(sec.versions)-1])
			id := azsecrets.ID(s.secretURL(sec.name, ""))
			p.ID = &id
			items = append(items, p)
		}
		return s.vaultPage(r, items)
	case parts[0] == "secrets" && len(parts) == 2 && r.Method == http.MethodDelete:
		sec := v.secrets[strings.ToLower(parts[1])]
		if sec == nil {
			return notFound(parts[1])
		}
		delete(v.secrets, strings.ToLower(parts[1]))
		sec.deletedAt = now
		v.deleted[strings.ToLower(parts[1])] = sec
		return http.StatusOK, s.deletedView(sec), "", "", ""
	case parts[0] == "deletedsecrets" && len(parts) == 1 && r.Method == http.MethodGet:
		var items []any
		for _, k := range sortedKeys(v.deleted) {
			items = append(items, s.deletedView(v.deleted[k]))
		}
		return s.vaultPage(r, items)
	case parts[0] == "deletedsecrets" && len(parts) == 2 && r.Method == http.MethodDelete:
		sec := v.deleted[strings.ToLower(parts[1])]
		if sec == nil {
			return http.StatusNotFound, nil, "SecretNotFound", "", "Deleted Secret not found: " + parts[1]
		}
		if now.Sub(sec.deletedAt) < purgeDelay {
			return http.StatusConflict, nil, "Conflict", "ObjectIsBeingDeleted", "Secret is currently being deleted."
		}
		delete(v.deleted, strings.ToLower(parts[1]))
		return http.StatusNoContent, nil, "", "", ""
	}
	return http.StatusBadRequest, nil, "BadParameter", "", "The lab's vault does not serve " + r.Method + " " + r.URL.Path
}

func (s *Server) deletedView(sec *secret) *azsecrets.DeletedSecretProperties {
	last := sec.versions[len(sec.versions)-1]
	id := azsecrets.ID(s.secretURL(sec.name, ""))
	del := sec.deletedAt
	return &azsecrets.DeletedSecretProperties{ID: &id, Attributes: last.Attributes, ContentType: last.ContentType, Tags: last.Tags,
		RecoveryID: ptr(s.VaultURL() + "/deletedsecrets/" + sec.name), DeletedDate: &del}
}

// vaultPage pages like ARM (nextLink with $skiptoken); Key Vault caps pages at 25 by default.
func (s *Server) vaultPage(r *http.Request, items []any) (int, any, string, string, string) {
	out, e := s.page(r, items)
	if e != nil {
		return e.Status, nil, e.Code, "", e.Message
	}
	if next, ok := out["nextLink"].(string); ok {
		out["nextLink"] = strings.Replace(next, s.URL(), "https://"+r.Host, 1)
	}
	return http.StatusOK, out, "", "", ""
}

// Secrets lists the vault's secret names, live and soft-deleted, in order.
func (s *Server) Secrets() (live, deleted []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range sortedKeys(s.vault.secrets) {
		live = append(live, s.vault.secrets[k].name)
	}
	for _, k := range sortedKeys(s.vault.deleted) {
		deleted = append(deleted, s.vault.deleted[k].name)
	}
	return live, deleted
}
