package aws

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/transport/winrm"
)

func TestIdentityRoundTripsThroughUserData(t *testing.T) {
	t.Parallel()
	_, hk, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(hk, "")
	if err != nil {
		t.Fatal(err)
	}
	linux := clouds.NodeIdentity{AdminUser: "mixedk8s", SSHHostKeyPEM: string(pem.EncodeToMemory(block)),
		SSHAuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk provisioner", `ssh-ed25519 AAAAC3Nza "quoted" admin`}}
	certPEM, keyPEM, _, err := winrm.GenerateCertificate("demo-win-0", nil)
	if err != nil {
		t.Fatal(err)
	}
	windows := clouds.NodeIdentity{AdminUser: "mixedk8s", AdminPassword: "Mk8-it's'secret", WinRMCertPEM: string(certPEM), WinRMKeyPEM: string(keyPEM)}

	for _, c := range []struct {
		os string
		id clouds.NodeIdentity
	}{{"linux", linux}, {"windows", windows}} {
		ud, err := renderIdentity(c.os, c.id, "payments-bmgb-1")
		if err != nil {
			t.Fatalf("%s: render: %v", c.os, err)
		}
		back, err := IdentityFromUserData(ud)
		if err != nil {
			t.Fatalf("%s: read back: %v\n%s", c.os, err, ud)
		}
		if back.AdminUser != c.id.AdminUser || back.AdminPassword != c.id.AdminPassword || back.SSHHostKeyPEM != c.id.SSHHostKeyPEM ||
			!slices.Equal(back.SSHAuthorizedKeys, c.id.SSHAuthorizedKeys) || back.WinRMCertPEM != c.id.WinRMCertPEM {
			t.Errorf("%s: identity changed in the round trip:\n got %#v\nwant %#v", c.os, back, c.id)
		}
		if got, want := ComputerNameFromUserData(ud), map[string]string{"windows": "payments-bmgb-1"}[c.os]; got != want {
			t.Errorf("%s: computer name read back %q; want %q", c.os, got, want)
		}
		if c.os == "windows" {
			// The key comes back in PKCS#8 form; it must be the same key.
			if _, err := tls.X509KeyPair([]byte(back.WinRMCertPEM), []byte(back.WinRMKeyPEM)); err != nil {
				t.Errorf("windows: the certificate and key read back do not pair: %v", err)
			}
		}
		if len(ud) > maxUserData {
			t.Errorf("%s: user data is %d bytes, over EC2's %d", c.os, len(ud), maxUserData)
		}
	}
	if _, err := IdentityFromUserData("#!/bin/sh\n"); err == nil {
		t.Error("a foreign script was read as an identity")
	}
}

func TestSecretsAreKeptOnceAndDeletedByCluster(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	if _, ok, err := f.cloud.Secret(ctx, "c1", "seed"); err != nil || ok {
		t.Fatalf("Secret before any = %v, %v; want absent", ok, err)
	}
	first, err := f.cloud.EnsureSecret(ctx, "c1", "seed", []byte{0, 1, 2, 255})
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.cloud.EnsureSecret(ctx, "c1", "seed", []byte("another value"))
	if err != nil || string(again) != string(first) {
		t.Fatalf("second EnsureSecret = %q, %v; want the first value %q", again, err, first)
	}
	// A Windows node's certificate and key exceed the 4 KB standard tier once encoded.
	big := []byte(strings.Repeat("x", 3500))
	if _, err := f.cloud.EnsureSecret(ctx, "c1", "node/c1-win-0/winrm", big); err != nil {
		t.Fatalf("EnsureSecret of %d bytes: %v", len(big), err)
	}
	for i := range 12 {
		if _, err := f.cloud.EnsureSecret(ctx, "c1", clouds.SecretName("n"+strings.Repeat("x", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.cloud.EnsureSecret(ctx, "c2", "seed", []byte("other cluster")); err != nil {
		t.Fatal(err)
	}
	if n := len(f.srv.Objects("c1")); n != 14 {
		t.Errorf("c1 has %d objects, want 14 parameters: %v", n, f.srv.Objects("c1"))
	}
	if err := f.cloud.DeleteSecrets(ctx, "c1"); err != nil {
		t.Fatalf("DeleteSecrets: %v", err)
	}
	if objs := f.srv.Objects("c1"); len(objs) != 0 {
		t.Errorf("left after DeleteSecrets: %v", objs)
	}
	if v, ok, err := f.cloud.Secret(ctx, "c2", "seed"); err != nil || !ok || string(v) != "other cluster" {
		t.Errorf("the other cluster's secret: %q, %v, %v", v, ok, err)
	}
}
