package daemontest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
)

// PIN and PUK are a new Card's secrets unless CardOptions say otherwise.
const (
	PIN = "123456"
	PUK = "12345678"
)

// CardOptions describe a fake card.
type CardOptions struct {
	Label string
	// PIN and PUK default to the package's PIN and PUK.
	PIN, PUK string
	// PINTries and PUKTries default to 3.
	PINTries, PUKTries int
	// HideTries makes the card keep its counters to itself, as some
	// PKCS#11 tokens do: a wrong PIN does not say how many tries are left.
	HideTries bool
}

// Card is a fake smart card below the backend interface: one P-256 key in
// slot 9a that signs only after its PIN, and PIN and PUK retry counters that
// behave as a PIV card's do. It counts every PIN and PUK presented to it, so
// a test can tell whether a secret reached the card at all.
type Card struct {
	id    string
	label string
	key   *ecdsa.PrivateKey

	mu                 sync.Mutex
	pin, puk           []byte
	pinLeft, pukLeft   int
	pinTries, pukTries int
	pinSeen, pukSeen   int
	hideTries          bool
}

var cardSerial atomic.Uint64

// NewCard makes a card with a fresh key.
func NewCard(opts CardOptions) (*Card, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &Card{
		id:        fmt.Sprintf("piv-fake%04d", cardSerial.Add(1)),
		label:     opts.Label,
		key:       key,
		hideTries: opts.HideTries,
		pin:       []byte(cmpOr(opts.PIN, PIN)),
		puk:       []byte(cmpOr(opts.PUK, PUK)),
	}
	c.pinTries, c.pukTries = max(opts.PINTries, 0), max(opts.PUKTries, 0)
	if c.pinTries == 0 {
		c.pinTries = 3
	}
	if c.pukTries == 0 {
		c.pukTries = 3
	}
	c.pinLeft, c.pukLeft = c.pinTries, c.pukTries
	return c, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

var _ device.Device = (*Card)(nil)

// ID is the authenticator id the daemon lists.
func (c *Card) ID() string { return c.id }

// Public is the card's public key.
func (c *Card) Public() *ecdsa.PublicKey { return &c.key.PublicKey }

// PINTriesLeft is the PIN's retry counter.
func (c *Card) PINTriesLeft() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pinLeft
}

// PUKTriesLeft is the PUK's retry counter.
func (c *Card) PUKTriesLeft() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pukLeft
}

// PINsSeen counts the PINs presented to the card, right or wrong.
func (c *Card) PINsSeen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pinSeen
}

// PUKsSeen counts the PUKs presented to the card.
func (c *Card) PUKsSeen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pukSeen
}

// Info implements device.Device.
func (c *Card) Info() device.Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	return device.Info{
		ID: c.id, Kind: device.KindSmartcard, Backend: device.BackendPIV, Reader: "daemontest reader", Label: c.label,
		PIN:  c.stateLocked(),
		Keys: []device.Key{{ID: "9a", Algorithm: device.ECCP256, Public: &c.key.PublicKey}},
	}
}

func (c *Card) stateLocked() device.PINState {
	if c.hideTries {
		return device.PINState{Blocked: c.pinLeft == 0}
	}
	return device.PINStateOf(hwerr.TriesLeft(c.pinLeft))
}

// told is what a wrong secret answers about the tries left.
func (c *Card) told(left int) hwerr.Tries {
	if c.hideTries {
		return hwerr.Tries{}
	}
	return hwerr.TriesLeft(left)
}

// PINState implements device.Device.
func (c *Card) PINState(context.Context) (device.PINState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stateLocked(), nil
}

// checkPINLocked presents pin as VERIFY does.
func (c *Card) checkPINLocked(pin []byte) error {
	c.pinSeen++
	if c.pinLeft == 0 {
		return hwerr.ErrPINBlocked
	}
	if subtle.ConstantTimeCompare(pin, c.pin) != 1 {
		c.pinLeft--
		return &hwerr.PINIncorrect{What: "PIN", RetriesLeft: c.told(c.pinLeft)}
	}
	c.pinLeft = c.pinTries
	return nil
}

// VerifyPIN implements device.Device.
func (c *Card) VerifyPIN(_ context.Context, pin []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkPINLocked(pin)
}

// ChangePIN implements device.Device.
func (c *Card) ChangePIN(_ context.Context, oldPIN, newPIN []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkPINLocked(oldPIN); err != nil {
		return err
	}
	c.pin = append([]byte(nil), newPIN...)
	return nil
}

// UnblockPIN implements device.Device.
func (c *Card) UnblockPIN(_ context.Context, puk, newPIN []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pukSeen++
	if c.pukLeft == 0 {
		return fmt.Errorf("PUK blocked: %w", hwerr.ErrPINBlocked)
	}
	if subtle.ConstantTimeCompare(puk, c.puk) != 1 {
		c.pukLeft--
		return &hwerr.PINIncorrect{What: "PUK", RetriesLeft: c.told(c.pukLeft)}
	}
	c.pukLeft = c.pukTries
	c.pin = append([]byte(nil), newPIN...)
	c.pinLeft = c.pinTries
	return nil
}

// Sign implements device.Device: slot 9a, ECDSA over P-256, after the PIN.
func (c *Card) Sign(_ context.Context, req device.SignRequest) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.Key != "9a" {
		return nil, fmt.Errorf("no key %q: %w", req.Key, hwerr.ErrNotFound)
	}
	if req.Algorithm != device.ECDSASHA256 {
		return nil, fmt.Errorf("algorithm %s: %w", req.Algorithm, hwerr.ErrNotSupported)
	}
	if req.PIN == nil {
		return nil, hwerr.ErrPINRequired
	}
	if err := c.checkPINLocked(req.PIN); err != nil {
		return nil, err
	}
	return ecdsa.SignASN1(rand.Reader, c.key, req.Digest)
}
