// Package daemon is hwauthd's core: the authenticator manager, the socket
// API's routes and handlers, access decisions and the error vocabulary. It
// has no cgo; hardware backends plug in through package device.
package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon/events"
	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
	"github.com/hwauthd/hwauthd/logind"
	"github.com/hwauthd/hwauthd/store"
)

// Options are what a Daemon is built from.
type Options struct {
	Config   config.Config
	Logger   *slog.Logger
	Backends []device.Backend
	Version  string
	// Store is the registry (required).
	Store store.Store
	// VirtualCards provisions TPM virtual smart cards; nil when the TPM
	// backend is off.
	VirtualCards device.VirtualCards
	// Accounts is the account database; nil means NewSystemAccounts().
	Accounts Accounts
	// PeerOf reads a connection's peer identity; nil means SO_PEERCRED. The
	// in-process harness (daemontest) sets it.
	PeerOf func(net.Conn) (server.Peer, error)
	// ReadyTimeout bounds the wait for the backends' first enumeration
	// before serving (DefaultReadyTimeout when 0).
	ReadyTimeout time.Duration
	// LoginSessions locks and ends login sessions for the removal policy;
	// nil means systemd-logind on the system bus.
	LoginSessions signin.LoginSessions
}

// Daemon serves the API on a listener and runs the backends behind it.
type Daemon struct {
	cfg      config.Config
	log      *slog.Logger
	version  string
	started  time.Time
	backends []device.Backend
	bus      *events.Bus
	manager  *Manager
	rules    *accessRules
	accounts Accounts
	peerOf   func(net.Conn) (server.Peer, error)
	store    store.Store
	sessions *signin.Sessions
	signIn   *signin.Service
	streams  streamTracker // open event streams, drained at shutdown
	removal  *signin.Removal
	vsc      device.VirtualCards
	// lastStatus is the last status answer (api_status.go).
	lastStatus atomic.Pointer[encodedStatus]

	readyTimeout time.Duration
}

// New builds a daemon; nothing runs until Run.
func New(opts Options) (*Daemon, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if opts.Store == nil {
		return nil, errors.New("daemon: a registry store is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	tr, err := signin.LoadTrust(opts.Config.SignIn)
	if err != nil {
		return nil, err
	}
	accounts := opts.Accounts
	if accounts == nil {
		accounts = NewSystemAccounts()
	}
	bus := events.New(opts.Config.API.EventBuffer, opts.Config.API.EventHistory)
	d := &Daemon{
		cfg:      opts.Config,
		log:      log,
		version:  opts.Version,
		started:  time.Now(),
		backends: opts.Backends,
		bus:      bus,
		manager:  NewManager(log, bus),
		rules:    newAccessRules(opts.Config, accounts, log),
		accounts: accounts,
		peerOf:   opts.PeerOf,
		store:    opts.Store,
		vsc:      opts.VirtualCards,

		readyTimeout: cmp.Or(opts.ReadyTimeout, DefaultReadyTimeout),
	}
	d.sessions = signin.NewSessions(d.sessionEnded)
	d.removal = &signin.Removal{
		Policy:   opts.Config.SignIn.RemovalPolicy,
		Sessions: d.sessions,
		Login:    opts.LoginSessions,
		Accounts: accounts,
		Timeout:  opts.Config.API.RequestTimeout.Duration,
		Log:      log,
		Locked:   d.sessionLocked,
		Failed:   d.removalFailed,
	}
	if d.removal.Login == nil {
		d.removal.Login = logind.New()
	}
	d.signIn = &signin.Service{
		Registry: d.store,
		Devices:  d.manager,
		Accounts: accounts,
		Failures: signin.NewLimiter(opts.Config.SignIn.MaxFailures, opts.Config.SignIn.FailureWindow.Duration),
		Sessions: d.sessions,
		Log:      log,

		SessionLifetime: opts.Config.SignIn.SessionLifetime.Duration,
		OpenTimeout:     opts.Config.SignIn.OpenTimeout.Duration,
		CachePIN:        opts.Config.SignIn.CachePIN,

		Trust:        tr,
		Mapping:      opts.Config.SignIn.Mapping,
		RelyingParty: opts.Config.RelyingParty(),
		Policy:       opts.Config.Policy,
		PINBlocks:    &signin.PINBlocks{SelfServiceUnblock: opts.Config.Policy.SelfServiceUnblock, Announce: d.pinBlocked},
	}
	d.rules.registeredTo = d.registeredTo
	d.rules.sessionUser = func(id string) (string, bool) {
		s, ok := d.sessions.Get(id)
		return s.User, ok
	}
	d.manager.onDetach = d.authenticatorGone
	d.manager.identify = d.checkBinding
	return d, nil
}

// pinBlocked announces the try that blocked the PIN of a.
func (d *Daemon) pinBlocked(a signin.Authenticator) {
	d.log.Info("PIN blocked", "authenticator", a.ID, "reader", a.Reader)
	d.manager.Publish(ipc.Event{Type: ipc.EventPINBlocked, Authenticator: a.ID, Reader: a.Reader})
}

// sessionEnded announces the end of a session.
func (d *Daemon) sessionEnded(s signin.Session, reason string) {
	d.log.Info("session ended", "user", s.User, "session", s.ID, "reason", reason)
	d.manager.Publish(sessionEndedEvent(s, reason))
}

// sessionEndedEvent is the event announcing that s ended for reason.
func sessionEndedEvent(s signin.Session, reason string) ipc.Event {
	return ipc.Event{Type: ipc.EventSessionEnded, User: s.User, Session: s.ID, Authenticator: s.Authenticator, Reason: reason}
}

// Manager returns the daemon's authenticator manager.
func (d *Daemon) Manager() *Manager { return d.manager }

// Run serves the API on ln until ctx ends, then shuts down cleanly. The
// backends start first, and the daemon answers its first request (and
// reports READY=1 under systemd) once each has enumerated its devices, or
// after the ready timeout: the request that started the daemon sees the
// cards already present. Connections made meanwhile wait in ln's queue. A
// backend that is down or still starting answers backend_unavailable
// instead of hanging. Under systemd the daemon also reports STOPPING=1 and,
// when the unit has a watchdog, WATCHDOG=1.
func (d *Daemon) Run(ctx context.Context, ln net.Listener) error {
	srv, err := server.New(server.Config{
		MaxBodyBytes:    d.cfg.API.MaxBodyBytes,
		MapError:        d.mapError,
		Logger:          d.log,
		ShutdownTimeout: 5 * time.Second,
		Limits: server.Limits{
			MaxConns:        d.cfg.API.MaxConnections,
			ReservedConns:   d.cfg.API.ReservedConnections,
			MaxConnsPerUser: d.cfg.API.MaxConnectionsPerUser,
			StreamsPerUser:  d.cfg.API.MaxStreamsPerUser,
			Reserved:        d.reservedPeer,
		},
		PeerOf: d.peerOf,
	}, d.routes())
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for _, b := range d.backends {
		wg.Go(func() {
			if err := b.Run(runCtx, d.manager); err != nil && !errors.Is(err, context.Canceled) {
				d.log.Error("backend stopped", "backend", b.Name(), "err", err)
			}
		})
	}
	wg.Go(func() { d.watchdog(runCtx) })
	if slow := d.awaitEnumeration(ctx); len(slow) > 0 {
		still := d.stillStarting()
		d.log.Warn("serving before every backend has enumerated its devices", "starting", still, "waited", d.readyTimeout)
		// systemctl status shows it until the last one is done.
		d.notify(server.NotifyStatus("serving; still starting: " + still))
		wg.Go(func() {
			if d.awaitAll(runCtx) {
				d.notify(server.NotifyStatus("serving"))
			}
		})
	}

	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	d.notify(server.NotifyReady())
	d.log.Info("serving", "socket", ln.Addr().String(), "version", d.version)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	d.notify(server.NotifyStopping())
	d.log.Info("shutting down")
	// Every session ends with its session-ended event, the bus's last: each
	// open event stream receives it after what was already queued for it,
	// whatever its buffer, and ends. The server stops only when every
	// stream has written it, or given up on a watcher that stopped reading
	// (a stream's write deadline).
	d.removal.Close() // each logind call is bounded by api.request_timeout
	ended := d.sessions.Close()
	final := make([]ipc.Event, 0, len(ended))
	for _, s := range ended {
		d.log.Info("session ended", "user", s.User, "session", s.ID, "reason", signin.EndShutdown)
		final = append(final, sessionEndedEvent(s, signin.EndShutdown))
	}
	d.bus.CloseWith(final)
	if !d.streams.drain(server.DefaultWriteTimeout + time.Second) {
		d.log.Warn("event streams did not finish before shutdown")
	}
	stopServing()
	if err := <-served; serveErr == nil {
		serveErr = err
	}
	stop()
	wg.Wait()
	return serveErr
}

// reservedPeer reports whether p may use the connections kept in reserve
// and is not bound per user: root, the sign-in group and the admin group.
// It is asked when a connection is accepted, before any request exists.
func (d *Daemon) reservedPeer(p server.Peer) bool {
	return d.rules.signIn.CheckAccess(&http.Request{URL: &url.URL{}}, p) == nil
}

// streamTracker counts open event streams so that shutdown can let them send
// their last events (the session-ended of every session) before the server
// closes their connections.
type streamTracker struct {
	mu      sync.Mutex
	open    int
	closing bool
	idle    chan struct{}
}

// enter registers a stream; it fails once shutdown has begun.
func (t *streamTracker) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.open++
	return true
}

// leave unregisters a stream.
func (t *streamTracker) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.open--
	if t.closing && t.open == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// drain refuses new streams and waits up to timeout for the open ones to
// end; it reports whether they did.
func (t *streamTracker) drain(timeout time.Duration) bool {
	t.mu.Lock()
	t.closing = true
	if t.open == 0 {
		t.mu.Unlock()
		return true
	}
	idle := make(chan struct{})
	t.idle = idle
	t.mu.Unlock()
	select {
	case <-idle:
		return true
	case <-time.After(timeout):
		return false
	}
}

// watchdog pings systemd's watchdog at half its interval while the daemon
// runs; it returns at once when the unit has no watchdog.
func (d *Daemon) watchdog(ctx context.Context) {
	interval, err := server.WatchdogInterval()
	if err != nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.notify(server.NotifyWatchdog())
		}
	}
}

// notify logs a failed sd_notify; it never stops the daemon.
func (d *Daemon) notify(err error) {
	if err != nil {
		d.log.Warn("systemd notification failed", "err", err)
	}
}
