// Package transport is how the provisioner reaches a node: one small
// interface, Conn, with an SSH implementation (transport/ssh, for Linux) and a
// WinRM-over-HTTPS implementation (transport/winrm, for Windows). Both pin the
// node's identity (SSH host key, TLS certificate) that the provisioner
// generated and injected through first-boot data, and both can go through an SSH
// bastion.
package transport

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
)

// Conn is one authenticated connection to a node.
type Conn interface {
	// Upload writes size bytes from r to path on the node with mode, replacing
	// any file there only once the whole content arrived and checked out.
	Upload(ctx context.Context, path string, r io.Reader, size int64, mode fs.FileMode) error
	// Run runs a command line, streams its output as it is produced, and
	// returns its exit code. A non-zero exit code is not an error.
	Run(ctx context.Context, cmd string, stdout, stderr io.Writer) (exitCode int, err error)
	// Close releases the connection; it is safe to call twice.
	Close() error
}

// DialFunc opens a TCP connection; a bastion's ssh.Client.Dial fits, so every
// transport can go through a jump host.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Sentinel errors, wrapped with the node and the fix. Tell them apart with errors.Is.
var (
	// ErrIdentityMismatch: the node presented a host key or certificate other
	// than the pinned one. Never retried: it is either a wrong address or an
	// attack, and waiting changes neither.
	ErrIdentityMismatch = errors.New("node identity does not match the pinned one")
	// ErrAuth: the node refused our credentials. Retried for a short while on
	// a fresh host, because first-boot scripts install keys and passwords
	// after the port opens; after that it is final.
	ErrAuth = errors.New("node refused the credentials")
	// ErrNotReady: nothing listens yet, or the connection dropped while the
	// host boots. Retried until the context ends.
	ErrNotReady = errors.New("node is not reachable yet")
	// ErrRebooting: the connection or shell died while the node was expected
	// to reboot. The caller reconnects and reads the agent's status.
	ErrRebooting = errors.New("node is rebooting")
)
