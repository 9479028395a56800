package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/hwauthd/hwauthd/daemon/backend"
	"github.com/hwauthd/hwauthd/ipc"
)

// guardedDevice keeps the request's deadline when a device stops answering
// (issue #13, defect 5). Every operation runs in its own goroutine, one at
// a time per device; the caller waits for it or for its context, whichever
// ends first. An operation still running at the deadline leaves the device
// wedged: later requests are answered busy at once, without queueing behind
// it, and Info answers from the last description, until the operation
// returns in the background (the card is answered or removed, the TPM
// thaws). Other devices and routes never wait for a wedged one.
//
// Secrets given to an operation are copied for it and the copy is wiped
// when the operation ends, so the caller may wipe its own at once even when
// it gave up waiting.
type guardedDevice struct {
	inner backend.Device
	log   *slog.Logger
	id    string
	// sem holds one token while an operation is inside the device.
	sem chan struct{}

	mu     sync.Mutex // guards the fields below
	info   ipc.Authenticator
	wedged bool
}

// guardedKey is a guarded security key.
type guardedKey struct {
	*guardedDevice
	key backend.SecurityKey
}

var (
	_ backend.Device      = (*guardedDevice)(nil)
	_ backend.SecurityKey = (*guardedKey)(nil)
)

// guard wraps d; a security key stays one.
func guard(d backend.Device, log *slog.Logger) backend.Device {
	info := d.Info()
	g := &guardedDevice{inner: d, log: log, id: info.ID, sem: make(chan struct{}, 1), info: info}
	if k, ok := d.(backend.SecurityKey); ok {
		return &guardedKey{guardedDevice: g, key: k}
	}
	return g
}

// Unwrap returns the backend's device.
func (g *guardedDevice) Unwrap() backend.Device { return g.inner }

// errWedged is the answer while a device's earlier operation still hangs.
func (g *guardedDevice) errWedged() error {
	return ipc.Errorf(ipc.CodeBusy, "authenticator %s stopped answering; hwauthd is waiting for it to recover. Try again in a moment, or remove and re-insert it", g.id)
}

// do runs op on the device within ctx.
func (g *guardedDevice) do(ctx context.Context, op func(ctx context.Context) error) error {
	g.mu.Lock()
	wedged := g.wedged
	g.mu.Unlock()
	if wedged {
		return g.errWedged()
	}
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan error, 1)
	go func() {
		err := op(ctx)
		info := g.inner.Info()
		g.mu.Lock()
		g.info = info
		if g.wedged {
			g.wedged = false
			g.log.Info("authenticator answers again", "id", g.id)
		}
		g.mu.Unlock()
		<-g.sem
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			g.mu.Lock()
			g.wedged = true
			g.mu.Unlock()
			g.log.Warn("authenticator stopped answering; its operation goes on in the background", "id", g.id)
		}
		return ctx.Err()
	}
}

// Info describes the device; while an operation is inside it, the
// description it left last time.
func (g *guardedDevice) Info() ipc.Authenticator {
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
func (g *guardedDevice) PINState(ctx context.Context) (st ipc.PINState, err error) {
	err = g.do(ctx, func(ctx context.Context) (err error) {
		st, err = g.inner.PINState(ctx)
		return err
	})
	return st, err
}

// VerifyPIN checks pin on the device.
func (g *guardedDevice) VerifyPIN(ctx context.Context, pin []byte) error {
	pin = bytes.Clone(pin)
	return g.do(ctx, func(ctx context.Context) error {
		defer clear(pin)
		return g.inner.VerifyPIN(ctx, pin)
	})
}

// ChangePIN replaces the PIN.
func (g *guardedDevice) ChangePIN(ctx context.Context, oldPIN, newPIN []byte) error {
	oldPIN, newPIN = bytes.Clone(oldPIN), bytes.Clone(newPIN)
	return g.do(ctx, func(ctx context.Context) error {
		defer clear(oldPIN)
		defer clear(newPIN)
		return g.inner.ChangePIN(ctx, oldPIN, newPIN)
	})
}

// UnblockPIN resets the retry counter with the PUK.
func (g *guardedDevice) UnblockPIN(ctx context.Context, puk, newPIN []byte) error {
	puk, newPIN = bytes.Clone(puk), bytes.Clone(newPIN)
	return g.do(ctx, func(ctx context.Context) error {
		defer clear(puk)
		defer clear(newPIN)
		return g.inner.UnblockPIN(ctx, puk, newPIN)
	})
}

// Sign signs a digest.
func (g *guardedDevice) Sign(ctx context.Context, req backend.SignRequest) (sig []byte, err error) {
	req.PIN = bytes.Clone(req.PIN)
	err = g.do(ctx, func(ctx context.Context) (err error) {
		defer clear(req.PIN)
		sig, err = g.inner.Sign(ctx, req)
		return err
	})
	return sig, err
}

// SetPIN sets a security key's first PIN.
func (g *guardedKey) SetPIN(ctx context.Context, newPIN []byte) error {
	newPIN = bytes.Clone(newPIN)
	return g.do(ctx, func(ctx context.Context) error {
		defer clear(newPIN)
		return g.key.SetPIN(ctx, newPIN)
	})
}

// MakeCredential creates a credential.
func (g *guardedKey) MakeCredential(ctx context.Context, req backend.MakeCredential) (c backend.Credential, err error) {
	req.PIN = bytes.Clone(req.PIN)
	err = g.do(ctx, func(ctx context.Context) (err error) {
		defer clear(req.PIN)
		c, err = g.key.MakeCredential(ctx, req)
		return err
	})
	return c, err
}

// GetAssertion asks for an assertion.
func (g *guardedKey) GetAssertion(ctx context.Context, req backend.GetAssertion) (a backend.Assertion, err error) {
	req.PIN = bytes.Clone(req.PIN)
	err = g.do(ctx, func(ctx context.Context) (err error) {
		defer clear(req.PIN)
		a, err = g.key.GetAssertion(ctx, req)
		return err
	})
	return a, err
}
