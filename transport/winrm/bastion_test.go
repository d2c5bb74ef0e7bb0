package winrm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestThroughBastion reaches the node through an SSH jump host on 127.0.0.1
// that forwards direct-tcpip channels to the virtual host, as the lab's
// bastion and a real one do.
func TestThroughBastion(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	addr, hostKey := startJumpHost(t, l)

	_, userKey, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(userKey)
	if err != nil {
		t.Fatal(err)
	}
	jump, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User:            "jump",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer jump.Close()

	cfg := l.config(NTLM)
	cfg.Dial = jump.DialContext
	c := l.connect(t, cfg)
	var stdout bytes.Buffer
	if code, err := c.Run(context.Background(), "hostname", &stdout, nil); err != nil || code != 0 || stdout.String() != labHostName+"\r\n" {
		t.Fatalf("Run through the bastion = %d, %q, %v", code, stdout.String(), err)
	}
	data := randomBytes(3<<20, 5)
	if err := c.Upload(context.Background(), `C:\k\via-bastion.bin`, bytes.NewReader(data), int64(len(data)), 0o644); err != nil {
		t.Fatalf("Upload through the bastion: %v", err)
	}
	assertFile(t, l, `C:\k\via-bastion.bin`, data)
}

// startJumpHost serves SSH on 127.0.0.1 and forwards direct-tcpip to the lab host.
func startJumpHost(t *testing.T, l *lab) (string, ssh.PublicKey) {
	t.Helper()
	_, hk, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, err := ssh.NewSignerFromKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	conf := &ssh.ServerConfig{
		// The test authenticates the bastion's host key; any user key is fine here.
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil },
	}
	conf.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, chans, reqs, err := ssh.NewServerConn(nc, conf)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for nch := range chans {
					if nch.ChannelType() != "direct-tcpip" {
						_ = nch.Reject(ssh.UnknownChannelType, "only direct-tcpip")
						continue
					}
					go forward(l, nch)
				}
			}()
		}
	}()
	return ln.Addr().String(), hostSigner.PublicKey()
}

func forward(l *lab, nch ssh.NewChannel) {
	d := nch.ExtraData()
	if len(d) < 4 {
		_ = nch.Reject(ssh.ConnectionFailed, "bad request")
		return
	}
	n := binary.BigEndian.Uint32(d)
	if len(d) < int(4+n+4) {
		_ = nch.Reject(ssh.ConnectionFailed, "bad request")
		return
	}
	target := net.JoinHostPort(string(d[4:4+n]), strconv.Itoa(int(binary.BigEndian.Uint32(d[4+n:]))))
	conn, err := l.dial(context.Background(), "tcp", target)
	if err != nil {
		_ = nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		conn.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	go func() { _, _ = io.Copy(conn, ch); conn.Close() }()
	_, _ = io.Copy(ch, conn)
	ch.Close()
}
