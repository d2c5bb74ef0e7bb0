//go:build !windows

package oslayer

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// sshPublicLine checks that privatePEM is an ed25519 host key and returns
// its public half as an authorized_keys line.
func sshPublicLine(privatePEM []byte) (string, error) {
	signer, err := ssh.ParsePrivateKey(privatePEM)
	if err != nil {
		return "", fmt.Errorf("the SSH host key does not parse: %w", err)
	}
	if signer.PublicKey().Type() != ssh.KeyAlgoED25519 {
		return "", errors.New("the SSH host key is not ed25519")
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))), nil
}
