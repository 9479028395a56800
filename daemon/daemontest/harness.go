// Package daemontest runs the real daemon in process for tests: the real
// route table, access rules and handlers, a real bbolt registry in a
// temporary directory, fake authenticators below the device
// contract (Card), a fake account database (Accounts), and an identity per
// client, carried on in-memory connections instead of SO_PEERCRED. Tests of
// access rules, registration and sign-in so run without root, hardware or
// sockets, in milliseconds (tailscale's ipn/lapitest is the model). They go
// alongside the real-stack tests in e2e/, not instead of them.
//
//	h := daemontest.New(t)
//	alice := h.Client("alice")            // a local user, created on first use
//	card := h.Insert(daemontest.CardOptions{Label: "alice's card"})
//	reg, err := alice.Register(ctx, "alice", ipc.RegisterRequest{Authenticator: card.ID(), PIN: ipc.Secret(daemontest.PIN)})
//
// Root (uid 0), the admin group (config access.admin_group) and the sign-in
// group (access.signin_group) exist from the start; h.AddUser puts a user in
// groups.
package daemontest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon"
	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/ipc/client"
	"github.com/hwauthd/hwauthd/ipc/server"
	"github.com/hwauthd/hwauthd/store/boltstore"
)

// Harness is one daemon running in process.
type Harness struct {
	t        testing.TB
	Config   config.Config
	Daemon   *daemon.Daemon
	Store    *boltstore.Store
	Accounts *Accounts
	ln       *pipeListener
}

// New starts a daemon with the default configuration, changed by mutate,
// and no backends; it stops when the test ends.
func New(t testing.TB, mutate ...func(*config.Config)) *Harness {
	t.Helper()
	return NewWith(t, Fakes{}, mutate...)
}

// Fakes are the parts below the daemon a test may replace; nil keeps the
// daemon's default (no TPM backend; systemd-logind on the system bus).
type Fakes struct {
	// Backends run alongside the harness's own Insert and Remove.
	Backends      []device.Backend
	VirtualCards  device.VirtualCards
	LoginSessions signin.LoginSessions
}

// NewWith is New with fake backends, TPM backend or systemd-logind.
func NewWith(t testing.TB, fakes Fakes, mutate ...func(*config.Config)) *Harness {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Defaults()
	cfg.Daemon.StateDir = dir
	cfg.Daemon.Socket = filepath.Join(dir, "in-process")
	for _, m := range mutate {
		m(&cfg)
	}
	st, err := boltstore.Open(filepath.Join(dir, "hwauthd.db"), boltstore.Options{})
	if err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	h := &Harness{t: t, Config: cfg, Store: st, Accounts: NewAccounts(cfg.Access), ln: newPipeListener()}
	h.Daemon, err = daemon.New(daemon.Options{
		Config:   cfg,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store:    st,
		Version:  "test",
		Accounts: h.Accounts,
		PeerOf:   peerOf,

		Backends:      fakes.Backends,
		VirtualCards:  fakes.VirtualCards,
		LoginSessions: fakes.LoginSessions,
	})
	if err != nil {
		st.Close()
		t.Fatalf("daemontest: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Daemon.Run(ctx, h.ln) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemontest: daemon: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("daemontest: the daemon did not stop")
		}
		st.Close()
	})
	return h
}

// Peer returns the identity of a user, creating the user (with no groups)
// when it does not exist yet.
func (h *Harness) Peer(user string) server.Peer {
	return h.Accounts.peer(user)
}

// AddUser creates a user in groups (names from the configuration, such as
// h.Config.Access.AdminGroup) and returns its identity.
func (h *Harness) AddUser(user string, groups ...string) server.Peer {
	return h.Accounts.Add(user, groups...)
}

// Client returns an API client that connects as user.
func (h *Harness) Client(user string) *client.Client {
	p := h.Peer(user)
	return client.NewDialer("in-process as "+user, func(ctx context.Context) (net.Conn, error) {
		return h.ln.dial(ctx, &p)
	})
}

// HTTP returns a plain HTTP client that connects as user (for raw requests:
// any host, paths under /v1/). With user "" its connections carry no
// credentials, like a peer whose SO_PEERCRED could not be read.
func (h *Harness) HTTP(user string) *http.Client {
	var p *server.Peer
	if user != "" {
		peer := h.Peer(user)
		p = &peer
	}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return h.ln.dial(ctx, p)
	}}}
}

// Insert presents a new fake card to the daemon.
func (h *Harness) Insert(opts CardOptions) *Card {
	h.t.Helper()
	c, err := NewCard(opts)
	if err != nil {
		h.t.Fatalf("daemontest: %v", err)
	}
	h.Daemon.Manager().Attach(c)
	return c
}

// Remove takes a card away.
func (h *Harness) Remove(c *Card) { h.Daemon.Manager().Detach(c.ID()) }

// peerConn is the server's end of an in-memory connection, with the
// identity of the client that dialed it (nil: no credentials).
type peerConn struct {
	net.Conn
	peer *server.Peer
}

// peerOf is the daemon's PeerOf for the harness's connections.
func peerOf(c net.Conn) (server.Peer, error) {
	pc, ok := c.(*peerConn)
	if !ok || pc.peer == nil {
		return server.Peer{}, errors.New("daemontest: connection without credentials")
	}
	return *pc.peer, nil
}

// pipeListener accepts in-memory connections (net.Pipe).
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

// dial connects a client with identity p.
func (l *pipeListener) dial(ctx context.Context, p *server.Peer) (net.Conn, error) {
	client, srv := net.Pipe()
	select {
	case l.conns <- &peerConn{Conn: srv, peer: p}:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Accept waits for a dial.
func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting.
func (l *pipeListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

// Addr names the listener.
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "daemontest" }
