package daemontest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"sync"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
)

// SecurityKey is a fake FIDO2 key below the backend interface: no PIN until
// SetPIN (or the one given), eight PIN tries, and ES256 credentials per
// relying party. It never asks for touch. An assertion's signature is over
// authData || clientDataHash, as CTAP2's.
type SecurityKey struct {
	id, label string

	mu      sync.Mutex
	pin     []byte // nil: no PIN set
	pinLeft int
	creds   map[string]fakeCredential // by credential id
}

type fakeCredential struct {
	rp  string
	key *ecdsa.PrivateKey
}

// securityKeyTries is CTAP2's PIN retry counter.
const securityKeyTries = 8

// InsertSecurityKey presents a new fake security key to the daemon, with
// pin as its PIN ("" for a key whose PIN is not set yet).
func (h *Harness) InsertSecurityKey(label, pin string) *SecurityKey {
	k := &SecurityKey{id: fmt.Sprintf("fido-fake%04d", cardSerial.Add(1)), label: label, pinLeft: securityKeyTries, creds: map[string]fakeCredential{}}
	if pin != "" {
		k.pin = []byte(pin)
	}
	h.Daemon.Manager().Attach(k)
	return k
}

var _ device.SecurityKey = (*SecurityKey)(nil)

// ID is the authenticator id the daemon lists.
func (k *SecurityKey) ID() string { return k.id }

// Info implements device.Device.
func (k *SecurityKey) Info() device.Info {
	k.mu.Lock()
	defer k.mu.Unlock()
	return device.Info{ID: k.id, Kind: device.KindSecurityKey, Backend: "fido", Label: k.label, PIN: k.stateLocked()}
}

func (k *SecurityKey) stateLocked() device.PINState {
	return device.PINStateOf(hwerr.TriesLeft(k.pinLeft))
}

// PINState implements device.Device.
func (k *SecurityKey) PINState(context.Context) (device.PINState, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stateLocked(), nil
}

// checkPINLocked presents pin as clientPIN's getPinToken does.
func (k *SecurityKey) checkPINLocked(pin []byte) error {
	switch {
	case k.pin == nil:
		return fmt.Errorf("no PIN set: %w", hwerr.ErrPINRequired)
	case k.pinLeft == 0:
		return hwerr.ErrPINBlocked
	case subtle.ConstantTimeCompare(pin, k.pin) != 1:
		k.pinLeft--
		return &hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(k.pinLeft)}
	}
	k.pinLeft = securityKeyTries
	return nil
}

// VerifyPIN implements device.Device.
func (k *SecurityKey) VerifyPIN(_ context.Context, pin []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.checkPINLocked(pin)
}

// ChangePIN implements device.Device.
func (k *SecurityKey) ChangePIN(_ context.Context, oldPIN, newPIN []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.checkPINLocked(oldPIN); err != nil {
		return err
	}
	k.pin = bytes.Clone(newPIN)
	return nil
}

// UnblockPIN implements device.Device: a security key has no PUK.
func (k *SecurityKey) UnblockPIN(context.Context, []byte, []byte) error {
	return fmt.Errorf("a security key has no PUK: %w", hwerr.ErrNotSupported)
}

// Sign implements device.Device: a security key signs only assertions.
func (k *SecurityKey) Sign(context.Context, device.SignRequest) ([]byte, error) {
	return nil, fmt.Errorf("a security key signs only assertions: %w", hwerr.ErrNotSupported)
}

// SetPIN implements device.SecurityKey.
func (k *SecurityKey) SetPIN(_ context.Context, newPIN []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pin != nil {
		return fmt.Errorf("the PIN is set already: %w", hwerr.ErrNotSupported)
	}
	k.pin = bytes.Clone(newPIN)
	return nil
}

// MakeCredential implements device.SecurityKey (ES256 only).
func (k *SecurityKey) MakeCredential(_ context.Context, req device.MakeCredential) (device.Credential, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if req.Algorithm != "" && req.Algorithm != "es256" {
		return device.Credential{}, fmt.Errorf("algorithm %s: %w", req.Algorithm, hwerr.ErrNotSupported)
	}
	if err := k.checkPINLocked(req.PIN); err != nil {
		return device.Credential{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return device.Credential{}, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return device.Credential{}, err
	}
	id := make([]byte, 16)
	rand.Read(id)
	k.creds[string(id)] = fakeCredential{rp: req.RPID, key: key}
	rp := sha256.Sum256([]byte(req.RPID))
	return device.Credential{ID: id, PublicKeyDER: der, AuthData: rp[:], AttestationFormat: "none"}, nil
}

// GetAssertion implements device.SecurityKey: the first of the listed
// credentials the key made for the relying party signs.
func (k *SecurityKey) GetAssertion(_ context.Context, req device.GetAssertion) (device.Assertion, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if req.PIN != nil {
		if err := k.checkPINLocked(req.PIN); err != nil {
			return device.Assertion{}, err
		}
	}
	for _, id := range req.CredentialIDs {
		c, ok := k.creds[string(id)]
		if !ok || c.rp != req.RPID {
			continue
		}
		rp := sha256.Sum256([]byte(req.RPID))
		authData := rp[:]
		digest := sha256.Sum256(append(bytes.Clone(authData), req.ClientDataHash...))
		sig, err := ecdsa.SignASN1(rand.Reader, c.key, digest[:])
		if err != nil {
			return device.Assertion{}, err
		}
		return device.Assertion{CredentialID: bytes.Clone(id), AuthData: authData, Signature: sig}, nil
	}
	return device.Assertion{}, fmt.Errorf("no credential for %s: %w", req.RPID, hwerr.ErrNotFound)
}
