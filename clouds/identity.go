package clouds

import (
	"context"
	"fmt"
)

// IdentityObserver is implemented by clouds whose instances make their own
// identity on first boot and publish it through a channel only the cloud's
// credentials read (GCE: guest attributes and serial port 4). The
// provisioner pins what it returns instead of the identity it derived; on
// other clouds the instance installs NodeIdentity and nothing is observed.
type IdentityObserver interface {
	// ObservedIdentity reads what the running instance published. Until the
	// guest has published, it fails with a retryable *Error.
	ObservedIdentity(ctx context.Context, inst Instance) (ObservedIdentity, error)
}

// ObservedIdentity is what an instance published about itself. Secret:
// AdminPassword.
type ObservedIdentity struct {
	// SSHHostKeys are a Linux instance's host keys, authorized_keys form.
	SSHHostKeys []string
	// WinRMThumbprint is the SHA-1 thumbprint (hex) of a Windows instance's
	// WinRM HTTPS certificate.
	WinRMThumbprint string
	// AdminUser and AdminPassword are the Windows login the cloud's
	// password flow made.
	AdminUser     string
	AdminPassword string
}

// String redacts the password.
func (o ObservedIdentity) String() string {
	return fmt.Sprintf("ObservedIdentity{SSHHostKeys: %d, WinRMThumbprint: %q, AdminUser: %q, AdminPassword: <redacted>}", len(o.SSHHostKeys), o.WinRMThumbprint, o.AdminUser)
}

// GoString redacts %#v too.
func (o ObservedIdentity) GoString() string { return o.String() }
