// Package fidobackend serves FIDO2 security keys (R6) to the daemon: it
// follows keys as they are plugged in and out (inotify on the device
// directory, no polling), presents each as an authenticator of kind
// security-key, and turns the daemon's requests into CTAP2 operations
// through package fido (go-libfido2 over libfido2).
package fidobackend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/fido"
	"github.com/hwauthd/hwauthd/hwerr"
)

// idPrefix starts the authenticator id of every security key.
const idPrefix = "fido-"

// Config configures the backend.
type Config struct {
	// DeviceDir is watched for hidraw devices appearing and leaving ("/dev").
	DeviceDir string
	// TouchTimeout ends a wait for a touch.
	TouchTimeout time.Duration
}

// Backend is the FIDO2 backend. Create it with New.
type Backend struct {
	cfg    Config
	log    *slog.Logger
	engine *fido.Backend

	mu     sync.Mutex
	host   device.Host
	keys   map[string]*Device // by device path
	status device.Status
	first  device.FirstScan
}

var (
	_ device.Backend    = (*Backend)(nil)
	_ device.Enumerator = (*Backend)(nil)
)

// New returns a backend that starts watching when it runs.
func New(cfg Config, log *slog.Logger) *Backend {
	b := &Backend{cfg: cfg, log: log, keys: map[string]*Device{},
		status: device.Status{State: device.StateDown, Detail: "starting"}}
	b.engine = fido.New(fido.Config{TouchTimeout: cfg.TouchTimeout, TouchNotice: b.touchNotice})
	return b
}

// Name is "fido2".
func (b *Backend) Name() string { return "fido2" }

// IDPrefix is "fido-".
func (b *Backend) IDPrefix() string { return idPrefix }

// Status reports whether keys are watched and how many are present.
func (b *Backend) Status() device.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status
}

// Enumerated is closed once the keys present when Run began are attached,
// or the watch has failed.
func (b *Backend) Enumerated() <-chan struct{} { return b.first.Enumerated() }

// Run watches for keys until ctx ends.
func (b *Backend) Run(ctx context.Context, host device.Host) error {
	b.mu.Lock()
	b.host = host
	b.mu.Unlock()
	events := make(chan fido.Event, 16)
	done := make(chan error, 1)
	w := fido.NewWatcher(b.cfg.DeviceDir, b.engine.List)
	go func() { done <- w.Run(ctx, events) }()
	b.setStatus()
	enumerated := w.Enumerated()
	for {
		if enumerated == nil && len(events) == 0 {
			b.first.Done()
		}
		select {
		case <-enumerated:
			enumerated = nil
			continue
		case err := <-done:
			b.first.Done()
			b.detachAll()
			if err != nil && !errors.Is(err, context.Canceled) {
				b.mu.Lock()
				b.status = device.Status{State: device.StateDown, Detail: "watching " + b.cfg.DeviceDir + ": " + err.Error()}
				b.mu.Unlock()
				b.log.Error("security keys are not watched", "err", err)
			}
			return nil
		case ev := <-events:
			switch ev.Kind {
			case fido.Attached:
				b.attach(ctx, ev.Device)
			case fido.Detached:
				b.detach(ev.Device.Path)
			}
			b.setStatus()
		}
	}
}

// attach opens a key and presents it.
func (b *Backend) attach(ctx context.Context, info fido.DeviceInfo) {
	key, err := b.engine.Open(info.Path)
	if err != nil {
		b.log.Info("security key cannot be opened", "path", info.Path, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d := &Device{key: key, info: device.Info{
		ID:      KeyID(info.Path),
		Kind:    device.KindSecurityKey,
		Backend: device.BackendFIDO2,
		Label:   label(info),
		Keys:    []device.Key{},
	}}
	if err := d.refresh(ctx); err != nil {
		b.log.Info("security key does not answer getInfo", "path", info.Path, "err", err)
		b.engine.Forget(info.Path)
		return
	}
	b.mu.Lock()
	b.keys[info.Path] = d
	host := b.host
	b.mu.Unlock()
	host.Attach(d)
}

func (b *Backend) detach(path string) {
	b.mu.Lock()
	d, ok := b.keys[path]
	delete(b.keys, path)
	host := b.host
	b.mu.Unlock()
	b.engine.Forget(path)
	if ok {
		host.Detach(d.Info().ID)
	}
}

func (b *Backend) detachAll() {
	b.mu.Lock()
	paths := make([]string, 0, len(b.keys))
	for p := range b.keys {
		paths = append(paths, p)
	}
	b.mu.Unlock()
	for _, p := range paths {
		b.detach(p)
	}
}

func (b *Backend) setStatus() {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.keys)
	b.status = device.Status{State: device.StateUp, Devices: &n}
}

// touchNotice announces that an operation waits for a touch.
func (b *Backend) touchNotice(path string) {
	b.mu.Lock()
	host := b.host
	b.mu.Unlock()
	if host != nil {
		host.Notify(device.Event{Type: device.EventTouchRequired, Authenticator: KeyID(path)})
	}
}

// KeyID is the authenticator id of the key at a device path. CTAP2 keys
// have no serial number, so the id stands for the key where it is plugged
// in; sign-in finds a user's credentials on any present key.
func KeyID(path string) string {
	h := sha256.Sum256([]byte(path))
	return idPrefix + hex.EncodeToString(h[:8])
}

func label(info fido.DeviceInfo) string {
	switch {
	case info.Manufacturer != "" && info.Product != "":
		return info.Manufacturer + " " + info.Product
	case info.Product != "":
		return info.Product
	}
	return "Security key"
}

// Device is one security key.
type Device struct {
	key *fido.Key

	mu   sync.Mutex
	info device.Info
}

var _ device.SecurityKey = (*Device)(nil)

// Info describes the key as last read.
func (d *Device) Info() device.Info {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.info
}

// refresh reads the key's getInfo and PIN retries.
func (d *Device) refresh(ctx context.Context) error {
	in, err := d.key.Info(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.info.FIDO = &device.FIDOInfo{AAGUID: in.AAGUID, Versions: in.Versions, Options: in.Options, PINSet: in.PINSet}
	d.info.PIN = device.PINStateOf(in.PINRetries)
	return nil
}

// PINState reads the PIN retry counter (getPINRetries spends no try).
func (d *Device) PINState(ctx context.Context) (device.PINState, error) {
	if err := d.refresh(ctx); err != nil {
		return device.PINState{}, err
	}
	return d.Info().PIN, nil
}

// VerifyPIN checks the PIN on the key.
func (d *Device) VerifyPIN(ctx context.Context, pin []byte) error {
	p := secret(pin)
	defer clear(p)
	return d.after(ctx, d.key.VerifyPIN(ctx, p))
}

// ChangePIN replaces the PIN.
func (d *Device) ChangePIN(ctx context.Context, oldPIN, newPIN []byte) error {
	o, n := secret(oldPIN), secret(newPIN)
	defer clear(o)
	defer clear(n)
	return d.after(ctx, d.key.ChangePIN(ctx, o, n))
}

// SetPIN sets the first PIN.
func (d *Device) SetPIN(ctx context.Context, newPIN []byte) error {
	n := secret(newPIN)
	defer clear(n)
	return d.after(ctx, d.key.SetPIN(ctx, n))
}

// secret copies a PIN for the key's package, which may zero what it is
// given; the caller's buffer stays the caller's, and the copy is cleared by
// the caller of secret when the operation ends.
func secret(b []byte) []byte { return slices.Clone(b) }

// UnblockPIN is not possible: a security key has no PUK. A blocked key is
// reset, which deletes its credentials.
func (d *Device) UnblockPIN(ctx context.Context, puk, newPIN []byte) error {
	return fmt.Errorf("a security key has no PUK; a blocked key must be reset, which deletes its credentials: %w", hwerr.ErrNotSupported)
}

// Sign is not offered: security keys sign through assertions.
func (d *Device) Sign(ctx context.Context, req device.SignRequest) ([]byte, error) {
	return nil, fmt.Errorf("a security key signs only through assertions: %w", hwerr.ErrNotSupported)
}

// MakeCredential creates a credential; its attestation is verified.
func (d *Device) MakeCredential(ctx context.Context, req device.MakeCredential) (device.Credential, error) {
	alg := fido.ES256
	switch req.Algorithm {
	case "", "es256":
	case "eddsa":
		alg = fido.EdDSA
	default:
		return device.Credential{}, fmt.Errorf("algorithm %q (use es256 or eddsa): %w", req.Algorithm, hwerr.ErrNotSupported)
	}
	pin := secret(req.PIN)
	defer clear(pin)
	c, err := d.key.MakeCredential(ctx, req.RPID, req.UserID, req.UserName, req.ClientDataHash, alg, pin, req.ResidentKey)
	if err := d.after(ctx, err); err != nil {
		return device.Credential{}, err
	}
	return device.Credential{ID: c.ID, PublicKeyDER: c.PublicKeyDER, PublicKeyCOSE: c.PublicKeyCOSE,
		AuthData: c.AuthData, Counter: c.Counter, AttestationFormat: c.Attestation.Format}, nil
}

// GetAssertion asks for an assertion with one of the credentials.
func (d *Device) GetAssertion(ctx context.Context, req device.GetAssertion) (device.Assertion, error) {
	pin := secret(req.PIN)
	defer clear(pin)
	a, err := d.key.Assert(ctx, req.RPID, req.ClientDataHash, req.CredentialIDs, pin, req.UserPresence)
	if err := d.after(ctx, err); err != nil {
		return device.Assertion{}, err
	}
	return device.Assertion{CredentialID: a.CredentialID, AuthData: a.AuthData, Signature: a.Sig, Counter: a.Counter}, nil
}

// after refreshes the PIN state once a PIN operation is done and returns
// its error.
func (d *Device) after(ctx context.Context, err error) error {
	if errors.Is(err, hwerr.ErrRemoved) || errors.Is(err, context.Canceled) {
		return err
	}
	_ = d.refresh(ctx)
	return err
}
