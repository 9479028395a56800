// Package vreader is hwauthd's side of its own PC/SC reader channel: cards
// that hwauthd serves (TPM virtual smart cards as PIV cards) appear in pcscd
// in readers of their own, through the reader driver in driver/
// (libifdhwauthd.so, configured in /etc/reader.conf.d/hwauthd).
//
// The driver, loaded by pcscd, connects to a Unix socket that hwauthd
// listens on, says which reader it is (a frame 'H' 'W' N) and then speaks
// vsmartcard's vpcd protocol (see package vpcd) with the card presented in
// reader N. The channel is private both ways: the socket file is mode 0600
// and the server answers only peers whose SO_PEERCRED uid it allows (root,
// which pcscd runs as); the driver answers only a server running as root or
// as the hwauthd user. Unlike vpcd, no TCP port is opened.
package vreader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hwauthd/hwauthd/pcsc/vpcd"
)

// FriendlyName is the FRIENDLYNAME of hwauthd's readers in reader.conf.d;
// pcscd names them "hwauthd Virtual Smart Card 0N 00". Backends that
// follow pcscd's readers leave these alone.
const FriendlyName = "hwauthd Virtual Smart Card"

// MaxReaders is the most readers the channel offers: pcsc-lite 1.9 has 16
// reader slots in all, and Windows presents at most 10 virtual smart cards.
const MaxReaders = 10

// helloTimeout bounds how long a new connection may take to say which
// reader it is.
const helloTimeout = 5 * time.Second

// ErrFull means every reader holds a card; the card stays API-only.
var ErrFull = errors.New("vreader: every virtual reader holds a card")

// Server presents cards in hwauthd's readers. Create it with Listen.
type Server struct {
	ln      *net.UnixListener
	readers int
	allow   func(uid uint32) bool
	log     *slog.Logger

	mu    sync.Mutex
	cards []vpcd.Card // by reader index; nil when the reader is empty
	conns []net.Conn  // the driver's connection of each reader, or nil
}

// Listen creates the socket at path (mode 0600; a stale file is replaced)
// for readers readers (at most MaxReaders). allow decides which peer uids
// may connect; nil allows root only.
func Listen(path string, readers int, allow func(uid uint32) bool, log *slog.Logger) (*Server, error) {
	if readers < 0 || readers > MaxReaders {
		return nil, fmt.Errorf("vreader: %d readers, want 0 to %d", readers, MaxReaders)
	}
	if allow == nil {
		allow = func(uid uint32) bool { return uid == 0 }
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("vreader: remove stale socket: %w", err)
	}
	old := syscall.Umask(0o177) // the socket is created 0600, never wider
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("vreader: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("vreader: %w", err)
	}
	return &Server{ln: ln, readers: readers, allow: allow, log: log,
		cards: make([]vpcd.Card, readers), conns: make([]net.Conn, readers)}, nil
}

// Readers is the number of readers offered.
func (s *Server) Readers() int { return s.readers }

// Present puts card into the first empty reader and returns its index;
// ErrFull when there is none.
func (s *Server) Present(card vpcd.Card) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range s.cards {
		if c == nil {
			s.cards[i] = card
			return i, nil
		}
	}
	return -1, ErrFull
}

// Withdraw removes the card from reader i: the driver's connection closes,
// which pcscd sees as the card's removal.
func (s *Server) Withdraw(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= s.readers {
		return
	}
	s.cards[i] = nil
	if s.conns[i] != nil {
		s.conns[i].Close()
		s.conns[i] = nil
	}
}

// Serve accepts the driver's connections until ctx ends, then closes the
// socket and every connection.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer s.closeAll()
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("vreader: accept: %w", err)
		}
		wg.Go(func() { s.handle(ctx, conn) })
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range s.conns {
		if c != nil {
			c.Close()
			s.conns[i] = nil
		}
	}
}

// handle checks the peer, reads which reader it is and serves that
// reader's card; with no card there, closing the connection says "no card".
func (s *Server) handle(ctx context.Context, conn *net.UnixConn) {
	uid, err := peerUID(conn)
	if err != nil || !s.allow(uid) {
		s.log.Warn("virtual reader connection refused: peer is not pcscd", "uid", uid, "err", err)
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Now().Add(helloTimeout))
	hello, err := vpcd.ReadFrame(conn)
	conn.SetReadDeadline(time.Time{})
	if err != nil || len(hello) != 3 || hello[0] != 'H' || hello[1] != 'W' || int(hello[2]) >= s.readers {
		conn.Close()
		return
	}
	i := int(hello[2])
	s.mu.Lock()
	card := s.cards[i]
	if card == nil {
		s.mu.Unlock()
		conn.Close()
		return
	}
	if s.conns[i] != nil {
		s.conns[i].Close() // the driver reconnected; the old connection is dead
	}
	s.conns[i] = conn
	s.mu.Unlock()
	_ = vpcd.Serve(ctx, conn, card)
	card.PowerOff()
	s.mu.Lock()
	if s.conns[i] == conn {
		s.conns[i] = nil
	}
	s.mu.Unlock()
}

// peerUID returns the uid of the process at the other end of conn.
func peerUID(conn *net.UnixConn) (uint32, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	return cred.Uid, nil
}
