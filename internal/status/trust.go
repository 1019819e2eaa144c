package status

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/safefile"
)

// ErrRefused is wrapped by Serve when the socket's directory, or a file
// already at its path, could have been planted by someone else. It is the
// dump's and the spool's (safefile.ErrRefused): one rule for all three.
var ErrRefused = safefile.ErrRefused

// ErrUntrusted is wrapped by Fetch when the process answering on the socket
// is neither root nor the caller: a local user who bound the path before
// the agent could otherwise show a made-up state.
var ErrUntrusted = errors.New("not trusting the answer")

// safeSocketPath creates the socket's directory if missing (0700) and
// returns path with that directory's symlinks resolved. The path is
// checked before anything is created (safefile.CheckPath: nobody but root
// and the agent's user owns a directory or symlink on the way, none is
// writable by others unless sticky), and the directory itself after:
// nobody else may write to it at all, or they could bind the path first
// and answer in the agent's place.
func safeSocketPath(path string) (string, error) {
	const what = "status socket directory"
	dir := filepath.Dir(path)
	if err := safefile.CheckPath(what, dir); err != nil {
		return "", socketHint(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("status socket: %w", err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("status socket: %w", err)
	}
	if err := safefile.CheckPrivateDir(what, real); err != nil {
		return "", socketHint(err)
	}
	return filepath.Join(real, filepath.Base(path)), nil
}

func socketHint(err error) error {
	return fmt.Errorf("%w (use a directory only root or the agent's user can write to, e.g. /run/proxmox-agent)", err)
}

// ownSocket refuses to remove a socket that is not the agent user's own: in
// a directory that passed safeSocketPath only root could have made it, and
// an agent must not take over what it did not make.
func ownSocket(path string, st fs.FileInfo) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("status socket: stat %s: no owner", path)
	}
	if euid := os.Geteuid(); int(sys.Uid) != euid {
		return fmt.Errorf("status socket %s: %w: a socket owned by uid %d, not the agent's %d; not removing it", path, ErrRefused, sys.Uid, euid)
	}
	return nil
}

// trustedPeer accepts root and the caller (real or effective uid).
func trustedPeer(uid uint32) bool {
	return uid == 0 || int(uid) == os.Getuid() || int(uid) == os.Geteuid()
}

// checkPeer reads the credentials of the process that listens on c's
// other end (recorded by the kernel when it bound the socket, so they
// cannot be forged by what it sends) and refuses an untrusted one.
func checkPeer(c net.Conn, path string, trusted func(uint32) bool) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("status socket %s: not a Unix socket", path)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("status socket %s: %w", path, err)
	}
	var cred *unix.Ucred
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		cred, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("status socket %s: %w", path, err)
	}
	if gerr != nil {
		return fmt.Errorf("status socket %s: who answers: %w", path, gerr)
	}
	if !trusted(cred.Uid) {
		return fmt.Errorf("status socket %s is served by uid %d (pid %d), neither root nor you: %w (someone may have bound the path before the agent)",
			path, cred.Uid, cred.Pid, ErrUntrusted)
	}
	return nil
}
