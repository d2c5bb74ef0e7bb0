package agent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// cmdAccess installs the login identity the provisioner sent: on Linux the
// SSH host key, on Windows the admin password and then the WinRM
// certificate. The password goes first: a run cut between the two leaves
// the old certificate with the new password, which the provisioner still
// recognises, and a second run finishes the job. The file is deleted as
// soon as it is read; nothing of it is printed.
func cmdAccess(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("access", env)
	var mf machineFlags
	mf.register(fs)
	file := fs.String("file", "", "")
	if err := fs.Parse(args); err != nil {
		return contract.ExitUsage
	}
	if *file == "" {
		return usageError(env, "access: --file is required; fix: pass the access file the provisioner wrote")
	}
	o, _, err := mf.machine(env, "linux")
	if err != nil {
		return usageError(env, "%v", err)
	}
	raw, err := o.ReadFile(*file)
	if err != nil {
		return usageError(env, "access: cannot read %s: %v; fix: pass the path of the access file", *file, err)
	}
	if err := o.Remove(*file); err != nil {
		fmt.Fprintf(env.Stderr, "access: %v\n", err)
		return contract.ExitFailed
	}
	var a contract.Access
	if err := json.Unmarshal(raw, &a); err != nil {
		return usageError(env, "access: %s is not valid JSON: %v", *file, err)
	}
	if a.APIVersion != contract.APIVersion {
		return usageError(env, "access: apiVersion %q is not %q; fix: use a provisioner and agent of the same release", a.APIVersion, contract.APIVersion)
	}
	id, err := o.Identity(ctx)
	if err != nil {
		fmt.Fprintf(env.Stderr, "failed to identify the machine: %v\n", err)
		return contract.ExitFailed
	}
	if id.GOOS == "windows" {
		if a.AdminUser == "" || a.AdminPassword == "" || a.WinRMCertPEM == "" || a.WinRMKeyPEM == "" {
			return usageError(env, "access: a Windows node needs adminUser, adminPassword, winrmCertPEM and winrmKeyPEM")
		}
		if err := o.SetPassword(ctx, a.AdminUser, a.AdminPassword); err != nil {
			fmt.Fprintf(env.Stderr, "access: %v\n", err)
			return contract.ExitFailed
		}
		if err := o.InstallWinRMCertificate(ctx, []byte(a.WinRMCertPEM), []byte(a.WinRMKeyPEM)); err != nil {
			fmt.Fprintf(env.Stderr, "access: %v\n", err)
			return contract.ExitFailed
		}
		return contract.ExitOK
	}
	if a.SSHHostKeyPEM == "" {
		return usageError(env, "access: a Linux node needs sshHostKeyPEM")
	}
	if err := o.InstallSSHHostKey(ctx, []byte(a.SSHHostKeyPEM)); err != nil {
		fmt.Fprintf(env.Stderr, "access: %v\n", err)
		return contract.ExitFailed
	}
	return contract.ExitOK
}
