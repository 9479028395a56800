// Package fido is hwauthd's FIDO2 security key backend over go-libfido2 and
// the system libfido2: discovery, one owner per key serializing access, PIN
// management, MakeCredential and GetAssertion with cancellable touch waits,
// libfido2/CTAP errors mapped to hwerr classes, and hot-plug through inotify.
// Signatures are verified by hwauthd itself with package fido/webauthn.
//
// Lock order: Backend.mu, then Key.sem, then the go-libfido2 Device mutex.
package fido

import (
	"context"
	"fmt"
	"sync"
	"time"

	libfido2 "github.com/keys-pub/go-libfido2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Config tunes the backend. The zero value is usable.
type Config struct {
	// TouchTimeout ends an operation still running after it (typically a
	// wait for a touch) with hwerr.ErrTimeout; 30 s when zero.
	TouchTimeout time.Duration
	// TouchNoticeDelay is how long an operation that may need a touch runs
	// before TouchNotice is called; 300 ms when zero.
	TouchNoticeDelay time.Duration
	// TouchNotice, when set, is called (from another goroutine) once per
	// operation that is still waiting after TouchNoticeDelay, so that
	// clients can tell the person to touch the key at path.
	TouchNotice func(path string)
}

// DeviceInfo describes one key found by List.
type DeviceInfo struct {
	Path         string
	Product      string
	Manufacturer string
	VendorID     uint16
	ProductID    uint16
}

// Backend lists FIDO2 keys and hands out one Key owner per device path.
type Backend struct {
	cfg Config

	mu   sync.Mutex
	keys map[string]*Key
}

// New returns a backend.
func New(cfg Config) *Backend {
	if cfg.TouchTimeout <= 0 {
		cfg.TouchTimeout = 30 * time.Second
	}
	if cfg.TouchNoticeDelay <= 0 {
		cfg.TouchNoticeDelay = 300 * time.Millisecond
	}
	return &Backend{cfg: cfg, keys: map[string]*Key{}}
}

// List returns the FIDO2 devices libfido2 finds (fido_dev_info_manifest).
// go-libfido2 reports vendor and product ids as int16; they are returned
// as the unsigned USB values.
func (b *Backend) List(ctx context.Context) ([]DeviceInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list security keys: %w: %w", hwerr.ErrCanceled, err)
	}
	locs, err := libfido2.DeviceLocations()
	if err != nil {
		return nil, fmt.Errorf("list security keys: %w: %v", hwerr.ErrUnavailable, err)
	}
	out := make([]DeviceInfo, 0, len(locs))
	for _, l := range locs {
		out = append(out, DeviceInfo{
			Path:         l.Path,
			Product:      l.Product,
			Manufacturer: l.Manufacturer,
			VendorID:     uint16(l.VendorID),
			ProductID:    uint16(l.ProductID),
		})
	}
	return out, nil
}

// Open returns the owner of the key at path; every caller gets the same
// *Key for a path, so that all access to a device is serialized. Nothing
// is sent to the device until an operation runs.
func (b *Backend) Open(path string) (*Key, error) {
	if path == "" {
		return nil, fmt.Errorf("open security key: empty path: %w", hwerr.ErrInvalidInput)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if k, ok := b.keys[path]; ok {
		return k, nil
	}
	dev, err := libfido2.NewDevice(path)
	if err != nil {
		return nil, fmt.Errorf("open security key: %w: %v", hwerr.ErrInvalidInput, err)
	}
	k := &Key{path: path, dev: dev, cfg: b.cfg, sem: make(chan struct{}, 1)}
	b.keys[path] = k
	return k, nil
}

// Forget drops the owner of a key that was detached; a later Open makes a
// new one.
func (b *Backend) Forget(path string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.keys, path)
}
