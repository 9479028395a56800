// Package pkcs11 is hwauthd's PKCS#11 token backend. Smart cards that are not
// PIV (national ID cards, CardOS, GIDS, OpenPGP cards) and hardware tokens
// reach the daemon through their vendors' or OpenSC's PKCS#11 modules and
// appear as authenticators of kind smartcard, backend pkcs11.
//
// Modules run only in a helper process (cmd/hwauthd-pkcs11, package
// pkcs11/helper) that this package starts with a private socketpair, as
// p11-kit's remote modules do: a module that crashes or hangs takes the
// helper down, not the daemon. The backend restarts the helper with backoff;
// requests in between fail with hwerr.ErrUnavailable. This package itself
// needs no cgo.
//
// Tokens are listed again when a module reports a slot event (blocking
// C_WaitForSlotEvent in the helper), when the helper restarts, and when the
// daemon calls Rescan (on PC/SC reader and card changes, and on explicit
// refresh). There is no polling loop.
package pkcs11

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pkcs11/wire"
)

// Name is the backend's key in /v1/status.
const Name = "pkcs11"

// Backend finds PKCS#11 tokens through the helper process and reports them to
// the daemon.
//
// Lock order: Backend.mu, then Device.mu is never taken inside it.
type Backend struct {
	cfg    Config
	log    *slog.Logger
	rescan chan struct{}

	mu      sync.Mutex
	conn    *helperConn // nil while the helper is down
	state   device.State
	detail  string
	devices map[string]*Device
	scans   int           // completed scans
	changed chan struct{} // closed and replaced on every change of state or devices
	first   device.FirstScan

	// beforeRestart, when set by tests, runs before each helper restart.
	beforeRestart func()
}

var (
	_ device.Backend    = (*Backend)(nil)
	_ device.Enumerator = (*Backend)(nil)
)

// NewBackend returns a backend for cfg; Run starts it.
func NewBackend(cfg Config, log *slog.Logger) *Backend {
	if log == nil {
		log = slog.Default()
	}
	return &Backend{
		cfg: cfg.withDefaults(), log: log.With("backend", Name),
		rescan: make(chan struct{}, 1),
		state:  device.StateDown, detail: "starting",
		devices: map[string]*Device{}, changed: make(chan struct{}),
	}
}

// Name returns "pkcs11".
func (b *Backend) Name() string { return Name }

// Status reports the helper's state and the number of tokens shown.
func (b *Backend) Status() device.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := device.Status{State: b.state, Detail: b.detail}
	if b.state == device.StateUp {
		n := len(b.devices)
		st.Devices = &n
	}
	return st
}

// Rescan asks the backend to list the tokens again. It does not block; scans
// asked for while one runs are coalesced.
func (b *Backend) Rescan() {
	select {
	case b.rescan <- struct{}{}:
	default:
	}
}

// Enumerated is closed once the first scan of the tokens is over, or the
// first helper failed, or no module is there to scan.
func (b *Backend) Enumerated() <-chan struct{} { return b.first.Enumerated() }

// Run starts the helper, reports tokens to host and restarts the helper with
// backoff whenever it dies, until ctx ends.
func (b *Backend) Run(ctx context.Context, host device.Host) error {
	if len(b.cfg.Modules) == 0 {
		b.setState(device.StateDisabled, "no PKCS#11 modules configured")
		b.first.Done()
		<-ctx.Done()
		return nil
	}
	if !b.anyModuleExists() {
		b.setState(device.StateAbsent, "none of the configured PKCS#11 modules is installed")
		b.first.Done()
		<-ctx.Done()
		return nil
	}
	backoff := b.cfg.RestartMin
	for {
		started := time.Now()
		b.runHelper(ctx, host)
		b.first.Done() // the helper failed before its first scan
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > time.Minute {
			backoff = b.cfg.RestartMin
		}
		if !sleepCtx(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, b.cfg.RestartMax)
		if b.beforeRestart != nil {
			b.beforeRestart()
		}
	}
}

// sleepCtx waits for d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (b *Backend) anyModuleExists() bool {
	for _, m := range b.cfg.Modules {
		if _, err := os.Stat(m); err == nil {
			return true
		}
	}
	return false
}

// runHelper runs one helper process until it dies or ctx ends.
func (b *Backend) runHelper(ctx context.Context, host device.Host) {
	c, err := startHelper(b.cfg.HelperPath, b.cfg.Env, logWriter{b.log}, b.cfg.RequestTimeout)
	if err != nil {
		b.setState(device.StateDown, err.Error())
		return
	}
	defer c.kill()
	resp, err := c.call(ctx, &wire.Request{Op: wire.OpLoad, Modules: b.cfg.Modules})
	if err != nil {
		b.setState(device.StateDown, "loading modules: "+err.Error())
		return
	}
	b.setConn(c, moduleDetail(resp.Modules))
	defer b.setConn(nil, "")
	b.scan(ctx, host, c)
	b.first.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.dead:
			c.mu.Lock()
			why := c.err
			c.mu.Unlock()
			b.log.Warn("PKCS#11 helper died; restarting", "err", why)
			b.setState(device.StateDown, fmt.Sprintf("PKCS#11 helper died (%v); restarting", why))
			return
		case <-b.rescan:
			b.scan(ctx, host, c)
		case <-c.events:
			b.scan(ctx, host, c)
		}
	}
}

// moduleDetail describes modules that failed to load, for Status.
func moduleDetail(mods []wire.ModuleStatus) string {
	var bad []string
	for _, m := range mods {
		if m.Error != "" {
			bad = append(bad, m.Path+": "+m.Error)
		}
	}
	return strings.Join(bad, "; ")
}

// setConn records the running helper (or none) and the state that goes with
// it.
func (b *Backend) setConn(c *helperConn, detail string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.conn = c
	if c != nil {
		b.state, b.detail = device.StateUp, detail
	}
	b.notifyLocked()
}

func (b *Backend) setState(state device.State, detail string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state, b.detail = state, detail
	b.notifyLocked()
}

// notifyLocked wakes everyone waiting on b.changed.
func (b *Backend) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// call sends a request to the running helper, or fails with
// hwerr.ErrUnavailable when there is none.
func (b *Backend) call(ctx context.Context, req *wire.Request) (*wire.Response, error) {
	b.mu.Lock()
	c := b.conn
	b.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("%s: %v: %w", req.Op, errHelperGone, hwerr.ErrUnavailable)
	}
	return c.call(ctx, req)
}

// logWriter passes the helper's stderr to the daemon's log, line by line.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.log.Warn("PKCS#11 helper", "stderr", line)
	}
	return len(p), nil
}
