package gce

import (
	"regexp"
	"strings"
)

// kmsKeyRE is a Cloud KMS key's resource name,
// projects/P/locations/L/keyRings/R/cryptoKeys/K, as both Compute's
// CustomerEncryptionKey.kmsKeyName and Secret Manager's
// CustomerManagedEncryption.kms_key_name take it (computepb and
// secretmanagerpb field docs; R and K are 1-63 of [a-zA-Z0-9_-],
// https://cloud.google.com/kms/docs/resource-hierarchy). The emulator
// checks the name and its location only: whether the key exists and the
// service agent may use it is for Cloud KMS, which the lab does not run.
var kmsKeyRE = regexp.MustCompile(`^projects/[^/]+/locations/([^/]+)/keyRings/[a-zA-Z0-9_-]{1,63}/cryptoKeys/[a-zA-Z0-9_-]{1,63}$`)

// kmsLocation is the location of a well-formed key name, and false for
// anything else.
func kmsLocation(name string) (string, bool) {
	m := kmsKeyRE.FindStringSubmatch(name)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// regionOfZone is the region of a zone name, e.g. us-central1 of us-central1-a.
func regionOfZone(zone string) string { return zone[:strings.LastIndex(zone, "-")] }
