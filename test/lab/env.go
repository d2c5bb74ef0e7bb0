package lab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
)

// Names of the env files in the lab folder.
const (
	EnvFileName  = "lab.env"
	JSONFileName = "lab.json"
)

// Env is what another process needs to use a running lab. lab.env holds it
// as KEY='value' lines (the keys are the `env` tags: the AWS ones are the
// names the AWS SDKs and CLI read, so `set -a; . lab.env` points any AWS
// client at the emulator); lab.json holds the same under the `json` tags.
// Both are owner-only: they hold the emulator's secret key.
type Env struct {
	// Dir is the lab folder.
	Dir string `json:"dir" env:"MIXEDK8S_LAB_DIR"`
	// API is the base URL of the lab's HTTP inspection and fault API.
	API string `json:"api" env:"MIXEDK8S_LAB_API"`
	// AWSEndpoint is the HTTPS endpoint of both EC2 and SSM.
	AWSEndpoint string `json:"aws_endpoint" env:"AWS_ENDPOINT_URL"`
	AWSRegion   string `json:"aws_region" env:"AWS_REGION"`
	// AWSAccessKeyID and AWSSecretAccessKey are the only credentials the emulator accepts.
	AWSAccessKeyID     string `json:"aws_access_key_id" env:"AWS_ACCESS_KEY_ID"`
	AWSSecretAccessKey string `json:"aws_secret_access_key" env:"AWS_SECRET_ACCESS_KEY"`
	// AWSCABundle is the path of the emulator CA's PEM certificate.
	AWSCABundle string `json:"aws_ca_bundle" env:"AWS_CA_BUNDLE"`
	// BastionAddress is host:port on 127.0.0.1.
	BastionAddress string `json:"bastion_address" env:"MIXEDK8S_LAB_BASTION_ADDRESS"`
	BastionUser    string `json:"bastion_user" env:"MIXEDK8S_LAB_BASTION_USER"`
	// BastionHostKey is the bastion's host key in authorized_keys form, to pin.
	BastionHostKey string `json:"bastion_host_key" env:"MIXEDK8S_LAB_BASTION_HOST_KEY"`
	// BastionPrivateKeyFile is the owner-only key of BastionUser.
	BastionPrivateKeyFile string `json:"bastion_private_key_file" env:"MIXEDK8S_LAB_BASTION_PRIVATE_KEY_FILE"`
	// MirrorBaseURL serves every supported version's artifacts: the spec's artifacts.mirror_base_url.
	MirrorBaseURL string `json:"mirror_base_url" env:"MIXEDK8S_LAB_MIRROR_BASE_URL"`
}

// fields walks Env's string fields with their env names.
func (e *Env) fields(f func(name string, v *string)) {
	rv := reflect.ValueOf(e).Elem()
	rt := rv.Type()
	for i := range rt.NumField() {
		f(rt.Field(i).Tag.Get("env"), rv.Field(i).Addr().Interface().(*string))
	}
}

// shellQuote writes s as one single-quoted shell word.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// write writes lab.env and lab.json; clouds adds the other emulators'
// variables to lab.env, by cloud name (see cloudemu.Emulator.Env).
func (e Env) write(dir string, clouds map[string]map[string]string) error {
	var b bytes.Buffer
	b.WriteString("# mixedk8s lab: `set -a; . " + EnvFileName + "; set +a` exports it; " + JSONFileName + " holds the same.\n")
	e.fields(func(name string, v *string) { fmt.Fprintf(&b, "%s=%s\n", name, shellQuote(*v)) })
	for _, cloud := range slices.Sorted(maps.Keys(clouds)) {
		for _, k := range slices.Sorted(maps.Keys(clouds[cloud])) {
			fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(clouds[cloud][k]))
		}
	}
	// The SDKs must never ask the instance metadata service on the developer's machine.
	b.WriteString("AWS_EC2_METADATA_DISABLED='true'\n")
	// The same values as the Terraform lab example's variables (examples/lab).
	for _, kv := range [][2]string{
		{"ec2_endpoint", e.AWSEndpoint}, {"region", e.AWSRegion}, {"ca_bundle_file", e.AWSCABundle},
		{"bastion_address", e.BastionAddress}, {"bastion_user", e.BastionUser}, {"bastion_host_key", e.BastionHostKey},
		{"bastion_private_key_file", e.BastionPrivateKeyFile}, {"mirror_base_url", e.MirrorBaseURL},
	} {
		fmt.Fprintf(&b, "TF_VAR_%s=%s\n", kv[0], shellQuote(kv[1]))
	}
	js, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{EnvFileName: b.Bytes(), JSONFileName: append(js, '\n')} {
		path := filepath.Join(dir, name)
		// Write beside, then rename: a reader never sees half a file.
		tmp := path + ".tmp"
		_ = os.Remove(tmp)
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// ReadEnv reads a running lab's env from its folder's lab.json, or from a
// lab.env or lab.json path.
func ReadEnv(path string) (Env, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, JSONFileName)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Env{}, fmt.Errorf("read the lab env: %w; fix: start the lab (go run ./test/lab/cmd/lab) and pass its folder", err)
	}
	var e Env
	if strings.HasSuffix(path, ".json") {
		if err := json.Unmarshal(data, &e); err != nil {
			return Env{}, fmt.Errorf("read the lab env %s: %w", path, err)
		}
		return e, nil
	}
	values := parseVars(data)
	e.fields(func(name string, v *string) { *v = values[name] })
	if e.AWSEndpoint == "" {
		return Env{}, fmt.Errorf("read the lab env %s: no AWS_ENDPOINT_URL; fix: pass the lab.env a running lab wrote", path)
	}
	return e, nil
}

// ReadVars reads every variable of a running lab's lab.env (its folder, or
// the file's path): the AWS ones and those of the other clouds' emulators
// (see cloudemu.Emulator.Env), as another process sourcing it would see them.
func ReadVars(path string) (map[string]string, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, EnvFileName)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the lab env: %w; fix: start the lab (go run ./test/lab/cmd/lab) and pass its folder", err)
	}
	return parseVars(data), nil
}

// parseVars reads KEY='value' lines as Env.write writes them.
func parseVars(data []byte) map[string]string {
	values := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'")
		}
		values[k] = v
	}
	return values
}
