package sshd

import (
	"io"
	"os"

	"github.com/pkg/sftp"

	"github.com/mixedk8s/mixedk8s/test/lab/host"
)

// sandboxFS serves SFTP requests from the host's sandbox. Paths go through
// host.Path, which refuses any that would leave the sandbox; symbolic and
// hard links are refused outright because a link could point out of it.
type sandboxFS struct {
	h       *host.Host
	umask   os.FileMode
	created func(path string, mode os.FileMode)
}

func (fsys *sandboxFS) real(p string) (string, error) {
	real, err := fsys.h.Path(p)
	if err != nil {
		return "", sftp.ErrSSHFxPermissionDenied
	}
	return real, nil
}

func (fsys *sandboxFS) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	real, err := fsys.real(r.Filepath)
	if err != nil {
		return nil, err
	}
	return os.Open(real)
}

func (fsys *sandboxFS) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	real, err := fsys.real(r.Filepath)
	if err != nil {
		return nil, err
	}
	pf := r.Pflags()
	flags := os.O_WRONLY
	if pf.Read {
		flags = os.O_RDWR
	}
	if pf.Creat {
		flags |= os.O_CREATE
	}
	if pf.Trunc {
		flags |= os.O_TRUNC
	}
	if pf.Excl {
		flags |= os.O_EXCL
	}
	// A file opened without a mode attribute is created 0666 less the
	// server's umask (openssh-portable sftp-server.c process_open).
	mode := 0o666 &^ fsys.umask
	_, statErr := os.Lstat(real)
	// No O_APPEND: pkg/sftp writes with WriteAt, which O_APPEND forbids.
	f, err := os.OpenFile(real, flags, mode)
	if err != nil {
		return nil, err
	}
	if pf.Creat && os.IsNotExist(statErr) {
		// os.OpenFile's mode is itself masked by this process's umask: set it exactly.
		if err = f.Chmod(mode); err != nil {
			f.Close()
			return nil, err
		}
		fsys.created(r.Filepath, mode)
	}
	return f, nil
}

func (fsys *sandboxFS) Filecmd(r *sftp.Request) error {
	real, err := fsys.real(r.Filepath)
	if err != nil {
		return err
	}
	switch r.Method {
	case "Setstat":
		return fsys.setstat(r, real)
	case "Rename", "PosixRename":
		target, err := fsys.real(r.Target)
		if err != nil {
			return err
		}
		return os.Rename(real, target)
	case "Rmdir":
		st, err := os.Lstat(real)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return sftp.ErrSSHFxFailure
		}
		return os.Remove(real)
	case "Remove":
		st, err := os.Lstat(real)
		if err != nil {
			return err
		}
		if st.IsDir() {
			return sftp.ErrSSHFxFailure
		}
		return os.Remove(real)
	case "Mkdir":
		return os.Mkdir(real, 0o755)
	case "Link", "Symlink":
		return sftp.ErrSSHFxOpUnsupported
	}
	return sftp.ErrSSHFxOpUnsupported
}

func (fsys *sandboxFS) setstat(r *sftp.Request, real string) error {
	attrs := r.Attributes()
	flags := r.AttrFlags()
	if flags.Size {
		if err := os.Truncate(real, int64(attrs.Size)); err != nil {
			return err
		}
	}
	if flags.Permissions {
		if err := os.Chmod(real, attrs.FileMode().Perm()); err != nil {
			return err
		}
	}
	if flags.Acmodtime {
		if err := os.Chtimes(real, attrs.AccessTime(), attrs.ModTime()); err != nil {
			return err
		}
	}
	// Ownership is ignored: the lab runs everything as root.
	return nil
}

func (fsys *sandboxFS) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	real, err := fsys.real(r.Filepath)
	if err != nil {
		return nil, err
	}
	switch r.Method {
	case "List":
		entries, err := os.ReadDir(real)
		if err != nil {
			return nil, err
		}
		infos := make(listerAt, 0, len(entries))
		for _, e := range entries {
			if info, err := e.Info(); err == nil {
				infos = append(infos, info)
			}
		}
		return infos, nil
	case "Stat":
		st, err := os.Stat(real)
		if err != nil {
			return nil, err
		}
		return listerAt{st}, nil
	case "Lstat":
		st, err := os.Lstat(real)
		if err != nil {
			return nil, err
		}
		return listerAt{st}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// Lstat makes lstat requests see links as links.
func (fsys *sandboxFS) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	r.Method = "Lstat"
	return fsys.Filelist(r)
}

// PosixRename replaces the target atomically (posix-rename@openssh.com).
func (fsys *sandboxFS) PosixRename(r *sftp.Request) error {
	return fsys.Filecmd(r)
}

type listerAt []os.FileInfo

func (l listerAt) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if n < len(out) || off+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}
