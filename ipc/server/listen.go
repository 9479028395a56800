package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
)

// DefaultSocketMode lets every local user connect; access is decided per
// request from the peer's credentials.
const DefaultSocketMode os.FileMode = 0o666

// Listen creates the API socket at path with the given mode (0 means
// DefaultSocketMode), creating the parent directory (0755) if missing. If a
// daemon answers on path it refuses; a stale socket file is removed first.
func Listen(path string, mode os.FileMode) (net.Listener, error) {
	if mode == 0 {
		mode = DefaultSocketMode
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("set mode of %s: %w", path, err)
	}
	return ln, nil
}

// removeStale removes path when it is a socket nobody listens on, and fails
// when a daemon answers on it or it is not a socket.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; remove it or choose another path", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("another hwauthd is running on %s", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// ActivationListener returns the socket passed by systemd socket activation.
// ok is false when the process was not socket-activated; more than one
// socket, or one that is not a stream socket, is an error.
func ActivationListener() (ln net.Listener, ok bool, err error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, false, fmt.Errorf("socket activation: %w", err)
	}
	switch {
	case len(lns) == 0:
		return nil, false, nil
	case len(lns) > 1:
		for _, l := range lns {
			if l != nil {
				l.Close()
			}
		}
		return nil, false, fmt.Errorf("socket activation: got %d sockets, want exactly one (check hwauthd.socket)", len(lns))
	case lns[0] == nil:
		return nil, false, errors.New("socket activation: the passed socket is not a listening stream socket (check hwauthd.socket)")
	}
	return lns[0], true, nil
}
