package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Peer is the identity of the process at the other end of a connection, read
// from the kernel (SO_PEERCRED, SO_PEERGROUPS) when the connection is
// accepted. It is carried as this typed value, never as a string.
type Peer struct {
	UID uint32
	GID uint32
	PID int32
	// Groups are the supplementary group ids of the peer.
	Groups []uint32
}

// InGroup reports whether gid is the peer's primary or a supplementary group.
func (p Peer) InGroup(gid uint32) bool {
	if p.GID == gid {
		return true
	}
	for _, g := range p.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

type peerKey struct{}

// readLogKey carries the connection's readLog.
type readLogKey struct{}

// peerResult is what ConnContext stores: the peer, or why it is unknown.
type peerResult struct {
	peer Peer
	err  error
}

// PeerFromContext returns the peer of the connection a request came on; ok is
// false when the credentials could not be read (such a peer gets no access).
func PeerFromContext(ctx context.Context) (Peer, bool) {
	r, ok := ctx.Value(peerKey{}).(*peerResult)
	if !ok || r.err != nil {
		return Peer{}, false
	}
	return r.peer, true
}

// WithPeer returns a context carrying p, as ConnContext does; for tests of
// handlers and access checkers.
func WithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, &peerResult{peer: p})
}

// connContext carries the peer's credentials, read once per connection
// when it was accepted.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if pc, ok := c.(*peerConn); ok {
		ctx = context.WithValue(ctx, readLogKey{}, &pc.reads)
		return context.WithValue(ctx, peerKey{}, &peerResult{peer: pc.peer})
	}
	p, err := ReadPeer(c)
	return context.WithValue(ctx, peerKey{}, &peerResult{peer: p, err: err})
}

// ReadPeer reads the credentials of the process at the other end of a Unix
// socket connection.
func ReadPeer(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("peer credentials: %T is not a Unix socket connection", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	var p Peer
	var opErr error
	err = raw.Control(func(fd uintptr) { p, opErr = readPeerFD(int(fd)) })
	if err == nil {
		err = opErr
	}
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	return p, nil
}

// readPeerFD reads SO_PEERCRED and the supplementary groups of a socket.
func readPeerFD(fd int) (Peer, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return Peer{}, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	p := Peer{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}
	p.Groups, err = peerGroups(fd)
	if err != nil {
		p.Groups, err = procGroups(p.PID)
	}
	if err != nil {
		return Peer{}, fmt.Errorf("supplementary groups: %w", err)
	}
	return p, nil
}

// peerGroups reads SO_PEERGROUPS (Linux 4.13), growing the buffer when the
// kernel answers ERANGE with the size it needs.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 32)
	for range 3 {
		size := uint32(len(buf) * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch e {
		case 0:
			return buf[:size/4], nil
		case unix.ERANGE:
			buf = make([]uint32, size/4+1)
		default:
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", e)
		}
	}
	return nil, errors.New("SO_PEERGROUPS: group list keeps growing")
}

// procGroups reads the Groups: line of /proc/PID/status, the fallback when
// SO_PEERGROUPS is not available.
func procGroups(pid int32) ([]uint32, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(int(pid)) + "/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Groups:")
		if !ok {
			continue
		}
		return parseGroups(rest)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("no Groups line in /proc status")
}

// parseGroups parses a space-separated list of group ids.
func parseGroups(s string) ([]uint32, error) {
	fields := strings.Fields(s)
	out := make([]uint32, 0, len(fields))
	for _, f := range fields {
		g, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("group id %q: %w", f, err)
		}
		out = append(out, uint32(g))
	}
	return out, nil
}
