package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/ipc"
)

// guardedDevice keeps the request's deadline when a device stops answering
// (issue #13, defect 5). Every operation runs in its own goroutine, one at
// a time per device; the caller waits for it or for its context, whichever
// ends first. An operation still running at the deadline leaves the device
// wedged: later requests are answered busy at once, without queueing behind
// it, and Info answers from the last description, until the operation
// returns in the background (the card answers or is removed; a device that
// implements device.Recoverer, a TPM virtual card, is made to give up by
// closing its connection, and its backend reconnects). Other devices and
// routes never wait for a wedged one.
//
// Secrets given to an operation are copied for it and the copy is wiped
// when the operation ends, so the caller may wipe its own at once even when
// it gave up waiting.
type guardedDevice struct {
	inner device.Device
	log   *slog.Logger
	id    string
	// check, when set, runs before a secret is sent to the device and
	// refuses a device that is not the one it claims to be.
	check func(ctx context.Context, info device.Info) error
	// sem holds one token while an operation is inside the device.
	sem chan struct{}

	mu     sync.Mutex // guards the fields below
	info   device.Info
	wedged bool
}

// guardedKey is a guarded security key.
type guardedKey struct {
	*guardedDevice
	key device.SecurityKey
}

var (
	_ device.Device      = (*guardedDevice)(nil)
	_ device.SecurityKey = (*guardedKey)(nil)
)

// guard wraps d; a security key stays one. check (may be nil) runs before
// every secret sent to d.
func guard(d device.Device, log *slog.Logger, check func(context.Context, device.Info) error) device.Device {
	info := d.Info()
	g := &guardedDevice{inner: d, log: log, id: info.ID, sem: make(chan struct{}, 1), info: info, check: check}
	if k, ok := d.(device.SecurityKey); ok {
		return &guardedKey{guardedDevice: g, key: k}
	}
	return g
}

// Unwrap returns the backend's device.
func (g *guardedDevice) Unwrap() device.Device { return g.inner }

// errWedged is the answer while a device's earlier operation still hangs.
func (g *guardedDevice) errWedged() error {
	return ipc.Errorf(ipc.CodeBusy, "authenticator %s stopped answering; hwauthd is waiting for it to recover. Try again in a moment, or remove and re-insert it", g.id)
}

// result is what an operation returns.
type result struct {
	v   any
	err error
}

// withSecret runs op like do, after the identity check.
func (g *guardedDevice) withSecret(ctx context.Context, op func(ctx context.Context) (any, error), wipe func()) (any, error) {
	if g.check != nil {
		if err := g.check(ctx, g.Info()); err != nil {
			wipe()
			return nil, err
		}
	}
	return g.do(ctx, op, wipe)
}

// do runs op on the device within ctx and returns what op returned, or
// ctx's error when ctx ended first. wipe (nil: nothing to wipe) clears op's
// copies of secrets once op has ended, or at once when op never runs.
func (g *guardedDevice) do(ctx context.Context, op func(ctx context.Context) (any, error), wipe func()) (any, error) {
	if wipe == nil {
		wipe = func() {}
	}
	g.mu.Lock()
	wedged := g.wedged
	g.mu.Unlock()
	if wedged {
		wipe()
		return nil, g.errWedged()
	}
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		wipe()
		return nil, ctx.Err()
	}
	done := make(chan result, 1)
	go func() {
		v, err := op(ctx)
		wipe()
		info := g.inner.Info()
		g.mu.Lock()
		g.info = info
		if g.wedged {
			g.wedged = false
			g.log.Info("authenticator answers again", "id", g.id)
		}
		g.mu.Unlock()
		<-g.sem
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			g.mu.Lock()
			first := !g.wedged
			g.wedged = true
			g.mu.Unlock()
			g.log.Warn("authenticator stopped answering; its operation goes on in the background", "id", g.id)
			if r, ok := g.inner.(device.Recoverer); ok && first {
				go r.Recover()
			}
		}
		return nil, ctx.Err()
	}
}

// as returns v as a T, or T's zero value.
func as[T any](v any, err error) (T, error) {
	t, _ := v.(T)
	return t, err
}

// errOnly adapts an operation that returns only an error.
func errOnly(f func() error) (any, error) { return nil, f() }

// Info describes the device; while an operation is inside it, the
// description it left last time.
func (g *guardedDevice) Info() device.Info {
	select {
	case g.sem <- struct{}{}:
	default:
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.info
	}
	info := g.inner.Info()
	g.mu.Lock()
	g.info = info
	g.mu.Unlock()
	<-g.sem
	return info
}

// PINState reads the retry counter.
func (g *guardedDevice) PINState(ctx context.Context) (device.PINState, error) {
	return as[device.PINState](g.do(ctx, func(ctx context.Context) (any, error) {
		return g.inner.PINState(ctx)
	}, nil))
}

// secrets clones each secret for an operation and returns the clones and
// the function that wipes them.
func secrets(in ...[]byte) ([][]byte, func()) {
	out := make([][]byte, len(in))
	for i, b := range in {
		out[i] = bytes.Clone(b)
	}
	return out, func() {
		for _, b := range out {
			clear(b)
		}
	}
}

// VerifyPIN checks pin on the device.
func (g *guardedDevice) VerifyPIN(ctx context.Context, pin []byte) error {
	s, wipe := secrets(pin)
	_, err := g.withSecret(ctx, func(ctx context.Context) (any, error) {
		return errOnly(func() error { return g.inner.VerifyPIN(ctx, s[0]) })
	}, wipe)
	return err
}

// ChangePIN replaces the PIN.
func (g *guardedDevice) ChangePIN(ctx context.Context, oldPIN, newPIN []byte) error {
	s, wipe := secrets(oldPIN, newPIN)
	_, err := g.withSecret(ctx, func(ctx context.Context) (any, error) {
		return errOnly(func() error { return g.inner.ChangePIN(ctx, s[0], s[1]) })
	}, wipe)
	return err
}

// UnblockPIN resets the retry counter with the PUK.
func (g *guardedDevice) UnblockPIN(ctx context.Context, puk, newPIN []byte) error {
	s, wipe := secrets(puk, newPIN)
	_, err := g.withSecret(ctx, func(ctx context.Context) (any, error) {
		return errOnly(func() error { return g.inner.UnblockPIN(ctx, s[0], s[1]) })
	}, wipe)
	return err
}

// Sign signs a digest; with a PIN, after the identity check.
func (g *guardedDevice) Sign(ctx context.Context, req device.SignRequest) ([]byte, error) {
	if len(req.PIN) == 0 {
		return as[[]byte](g.do(ctx, func(ctx context.Context) (any, error) { return g.inner.Sign(ctx, req) }, nil))
	}
	s, wipe := secrets(req.PIN)
	req.PIN = s[0]
	return as[[]byte](g.withSecret(ctx, func(ctx context.Context) (any, error) { return g.inner.Sign(ctx, req) }, wipe))
}

// SetPIN sets a security key's first PIN.
func (g *guardedKey) SetPIN(ctx context.Context, newPIN []byte) error {
	s, wipe := secrets(newPIN)
	_, err := g.withSecret(ctx, func(ctx context.Context) (any, error) {
		return errOnly(func() error { return g.key.SetPIN(ctx, s[0]) })
	}, wipe)
	return err
}

// MakeCredential creates a credential.
func (g *guardedKey) MakeCredential(ctx context.Context, req device.MakeCredential) (device.Credential, error) {
	s, wipe := secrets(req.PIN)
	req.PIN = s[0]
	return as[device.Credential](g.withSecret(ctx, func(ctx context.Context) (any, error) {
		return g.key.MakeCredential(ctx, req)
	}, wipe))
}

// GetAssertion asks for an assertion.
func (g *guardedKey) GetAssertion(ctx context.Context, req device.GetAssertion) (device.Assertion, error) {
	s, wipe := secrets(req.PIN)
	req.PIN = s[0]
	return as[device.Assertion](g.withSecret(ctx, func(ctx context.Context) (any, error) {
		return g.key.GetAssertion(ctx, req)
	}, wipe))
}
