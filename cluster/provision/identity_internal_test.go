package provision

import (
	"crypto/ed25519"
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
)

func testSeed() []byte {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	return seed
}

func pubHex(k ed25519.PrivateKey) string { return hex.EncodeToString(k.Public().(ed25519.PublicKey)) }

// Secrets epoch 0 derives exactly what clusters made before epochs
// existed hold, so they plan no change: the values below were derived from
// the seed 00 01 .. 1f with the derivation as it was before (HKDF-SHA256,
// info "mixedk8s.io/<purpose>/<node>").
func TestEpochZeroKeepsTheIdentitiesClustersHave(t *testing.T) {
	t.Parallel()
	seed := testSeed()
	for _, c := range []struct{ what, got, want string }{
		{"first-boot host key", pubHex(hostKey(seed, "demo-cp-0", 0)), "87c4c745a1ae9605d0a5ba3f6f981ac918265743aa885f2b1e156eeb6571015f"},
		{"lasting host key", pubHex(lastingHostKey(seed, "demo-cp-0", 0)), "672e56b748ddb0ff4b3208821ec4c87e2f5b2c3238a4e56c5836f0991c083127"},
		{"client key", pubHex(clientKey(seed)), "a0a3904970501349beb1047a031a094de7a14016094ce63b4529041c77f2b1b0"},
		{"first-boot password", adminPassword(seed, "demo-win-0", 0), "Mk8-3NgJTiYKzdHSwPTaAYn9"},
		{"lasting password", lastingPassword(seed, "demo-win-0", 0), "Mk8-3uLozS3LgM5mkm9yTZs4"},
		{"first-boot WinRM certificate's name", string(secretWinRM("demo-win-0", 0)), "node/demo-win-0/winrm"},
		{"lasting WinRM certificate's name", string(secretLastingWinRM("demo-win-0", 0)), "node/demo-win-0/winrm-lasting"},
		{"lasting mark's name", string(lastingMark(cluster.Node{Name: "demo-win-0"}, clouds.Instance{ID: "i-0123"}, 0)), "node/demo-win-0/lasting/c46a8ed1db42c70f"},
	} {
		if c.got != c.want {
			t.Errorf("%s at epoch 0: %s, want %s (what the cluster's nodes hold)", c.what, c.got, c.want)
		}
	}
}

// Every per-node identity changes with the epoch, differs between nodes,
// and is the same on every call; the client key, which first-boot data
// authorises, stays.
func TestEachEpochGivesEveryNodeNewIdentities(t *testing.T) {
	t.Parallel()
	seed := testSeed()
	per := map[string]func(node string, epoch int) string{
		"first-boot host key":                 func(n string, e int) string { return pubHex(hostKey(seed, n, e)) },
		"lasting host key":                    func(n string, e int) string { return pubHex(lastingHostKey(seed, n, e)) },
		"first-boot password":                 func(n string, e int) string { return adminPassword(seed, n, e) },
		"lasting password":                    func(n string, e int) string { return lastingPassword(seed, n, e) },
		"first-boot WinRM certificate's name": func(n string, e int) string { return string(secretWinRM(n, e)) },
		"lasting WinRM certificate's name":    func(n string, e int) string { return string(secretLastingWinRM(n, e)) },
		"lasting mark's name": func(n string, e int) string {
			return string(lastingMark(cluster.Node{Name: n}, clouds.Instance{ID: "i-0123"}, e))
		},
	}
	for what, f := range per {
		seen := map[string]string{}
		for _, node := range []string{"demo-cp-0", "demo-win-0"} {
			for _, epoch := range []int{0, 1, 2, 10} {
				v := f(node, epoch)
				if v != f(node, epoch) {
					t.Errorf("%s of %s at epoch %d differs between calls", what, node, epoch)
				}
				at := node + " epoch " + itoa(epoch)
				if prev, dup := seen[v]; dup {
					t.Errorf("%s: %s and %s get the same value", what, prev, at)
				}
				seen[v] = at
			}
		}
	}
	if got := label("ssh-host-key", "demo-cp-0", 3); got != "mixedk8s.io/ssh-host-key/demo-cp-0/epoch-3" {
		t.Errorf("label at epoch 3: %q", got)
	}
	if got := string(secretLastingWinRM("demo-win-0", 3)); got != "node/demo-win-0/winrm-lasting/e3" {
		t.Errorf("lasting WinRM certificate's name at epoch 3: %q", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
