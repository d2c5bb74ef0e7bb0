package provision

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// The uploaded certificates live as long as the token that owns them
// (kubeadm's upload-certs phase): gone, owned by a gone token, or owned by
// a token that expires, they have that long left.
func TestUploadedCertsLeft(t *testing.T) {
	t.Parallel()
	certs := func(owner string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: uploadedCertsSecret, Namespace: "kube-system",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Secret", Name: owner}}}}
	}
	token := func(name string, in time.Duration) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system"},
			Data: map[string][]byte{bootstrapapi.BootstrapTokenExpirationKey: []byte(time.Now().Add(in).UTC().Format(time.RFC3339))}}
	}
	for _, c := range []struct {
		name    string
		objects []*corev1.Secret
		min     time.Duration
		max     time.Duration
	}{
		{"never uploaded", nil, 0, 0},
		{"its token is gone", []*corev1.Secret{certs("bootstrap-token-abcdef")}, 0, 0},
		{"ten minutes left", []*corev1.Secret{certs("bootstrap-token-abcdef"), token("bootstrap-token-abcdef", 10*time.Minute)}, 9 * time.Minute, 10 * time.Minute},
		{"uploaded a moment ago", []*corev1.Secret{certs("bootstrap-token-abcdef"), token("bootstrap-token-abcdef", 2*time.Hour)}, 119 * time.Minute, 2 * time.Hour},
		{"expired", []*corev1.Secret{certs("bootstrap-token-abcdef"), token("bootstrap-token-abcdef", -time.Minute)}, 0, 0},
	} {
		cs := fake.NewClientset()
		for _, o := range c.objects {
			if _, err := cs.CoreV1().Secrets("kube-system").Create(t.Context(), o, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		p := &Provisioner{}
		got, err := p.uploadedCertsLeft(t.Context(), &kubeAPI{cs: cs, cluster: "demo"})
		if err != nil || got < c.min || got > c.max {
			t.Errorf("%s: %s left (%v), want between %s and %s", c.name, got, err, c.min, c.max)
		}
	}
}

func TestIsControlPlane(t *testing.T) {
	t.Parallel()
	spec := cluster.Spec{Name: "demo"}
	for name, want := range map[string]bool{"demo-cp-0": true, "demo-cp-4": true, "demo-cp-x": false, "demo-lin-0": false, "other-cp-0": false, "demo-cp-": false} {
		if got := isControlPlane(spec, name); got != want {
			t.Errorf("isControlPlane(%q) = %v, want %v", name, got, want)
		}
	}
}
