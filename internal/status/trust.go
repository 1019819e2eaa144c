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
)

// ErrRefused is wrapped by Serve when the socket's directory, or a file
// already at its path, could have been planted by someone else.
var ErrRefused = errors.New("refused")

// ErrUntrusted is wrapped by Fetch when the process answering on the socket
// is neither root nor the caller: a local user who bound the path before
// the agent could otherwise show a made-up state.
var ErrUntrusted = errors.New("not trusting the answer")

// safeSocketPath creates the socket's directory if missing (0700) and
// returns path with that directory's symlinks resolved, after checking
// the directory and every directory above it (checkSocketDir).
func safeSocketPath(path string) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("status socket: %w", err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("status socket: %w", err)
	}
	if err := checkSocketDir(real, os.Geteuid()); err != nil {
		return "", err
	}
	return filepath.Join(real, filepath.Base(path)), nil
}

// checkSocketDir refuses a socket directory that anyone but root and the
// agent's user (euid) owns or can write to: they could bind the path first
// and answer in the agent's place, or remove the agent's socket. The
// directories above it may be sticky and world-writable (/tmp): others
// cannot rename or remove what is not theirs there.
func checkSocketDir(dir string, euid int) error {
	for d, first := dir, true; ; d, first = filepath.Dir(d), false {
		st, err := os.Lstat(d)
		if err != nil {
			return fmt.Errorf("status socket: %w", err)
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("status socket: stat %s: no owner", d)
		}
		switch mode := st.Mode(); {
		case !mode.IsDir():
			return refuse(d, "is not a directory")
		case sys.Uid != 0 && int(sys.Uid) != euid:
			return refuse(d, fmt.Sprintf("is owned by uid %d, neither root nor the agent's %d", sys.Uid, euid))
		case mode.Perm()&0o022 != 0 && (first || mode&fs.ModeSticky == 0):
			return refuse(d, fmt.Sprintf("mode %#o lets group or others write to it", sys.Mode&0o7777))
		}
		if parent := filepath.Dir(d); parent == d {
			return nil
		}
	}
}

func refuse(dir, why string) error {
	return fmt.Errorf("status socket directory %s: %w: %s (use a directory only root or the agent's user can write to, e.g. /run/proxmox-agent)", dir, ErrRefused, why)
}

// ownSocket refuses to remove a socket that is not the agent user's own: in
// a directory that passed checkSocketDir only root could have made it, and
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
