package pkcs11

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pkcs11/wire"
)

// Token and slot flags (PKCS#11 v2.40 §5.5, CK_SLOT_INFO and CK_TOKEN_INFO).
const (
	ckfRemovableDevice = 0x00000002
	ckfProtectedAuth   = 0x00000100
	ckfUserPINFinalTry = 0x00020000
	ckfUserPINLocked   = 0x00040000
)

// Device is one PKCS#11 token, reached through the helper. Its methods
// serialize access to the token (one owner per device); the helper logs out
// after every operation that logged in.
type Device struct {
	b   *Backend
	tok wire.Token
	id  string

	// keys are the token's keys, parsed once when it was listed.
	keys []device.Key

	mu  sync.Mutex // serializes operations; guards pin
	pin device.PINState
}

var _ device.Device = (*Device)(nil)

func newDevice(b *Backend, tok wire.Token) *Device {
	d := &Device{b: b, tok: tok, id: DeviceID(tok.Manufacturer, tok.Model, tok.Serial), pin: pinState(tok.Flags)}
	d.keys = make([]device.Key, 0, len(tok.Keys))
	for _, k := range tok.Keys {
		id := hex.EncodeToString(k.ID)
		key, err := device.ParseKey(id, k.PublicKey, k.Certificate)
		if err != nil && len(k.Certificate) > 0 {
			b.log.Warn("PKCS#11 certificate does not parse; the key is listed without it", "token", d.id, "key", id, "err", err)
			key, err = device.ParseKey(id, k.PublicKey, nil)
		}
		if err != nil {
			b.log.Warn("PKCS#11 key is not listed", "token", d.id, "key", id, "err", err)
			continue
		}
		d.keys = append(d.keys, key)
	}
	return d
}

// DeviceID is the stable id of a token: "p11-" and a hash of its
// manufacturer, model and serial number.
func DeviceID(manufacturer, model, serial string) string {
	h := sha256.Sum256([]byte(manufacturer + "\x00" + model + "\x00" + serial))
	return "p11-" + hex.EncodeToString(h[:8])
}

// ID returns the device id.
func (d *Device) ID() string { return d.id }

// Reader returns the PC/SC reader the token is in, as the module names it
// (OpenSC's slot description), or "" for a token not in a removable slot
// (SoftHSM2, a USB token whose module does not say).
func (d *Device) Reader() string { return readerOf(&d.tok) }

// ProtectedAuthPath reports whether the token reads PINs on its own PIN pad
// (CKF_PROTECTED_AUTHENTICATION_PATH): then PIN operations take no PIN from
// the caller and the person types it on the reader.
func (d *Device) ProtectedAuthPath() bool { return d.tok.Flags&ckfProtectedAuth != 0 }

// readerOf returns the reader name of a token in a removable slot.
func readerOf(tok *wire.Token) string {
	if tok.SlotFlags&ckfRemovableDevice == 0 {
		return ""
	}
	return tok.SlotDescription
}

// Info describes the token with its keys and the PIN state last seen.
func (d *Device) Info() device.Info {
	d.mu.Lock()
	pin := d.pin
	d.mu.Unlock()
	return device.Info{
		ID: d.id, Kind: device.KindSmartcard, Backend: device.BackendPKCS11,
		Reader: d.Reader(), Label: d.tok.Label, Serial: d.tok.Serial, PIN: pin,
		Keys: slices.Clone(d.keys),
	}
}

// pinState reads the user PIN flags of CK_TOKEN_INFO: CKF_USER_PIN_LOCKED
// is blocked, CKF_USER_PIN_FINAL_TRY is one try left; PKCS#11 gives no
// other count, so RetriesLeft is unknown otherwise (CKF_USER_PIN_COUNT_LOW
// only says some tries were spent).
func pinState(flags uint) device.PINState {
	switch {
	case flags&ckfUserPINLocked != 0:
		return device.PINStateOf(hwerr.TriesLeft(0))
	case flags&ckfUserPINFinalTry != 0:
		return device.PINStateOf(hwerr.TriesLeft(1))
	}
	return device.PINState{}
}

// PINState reads the token's PIN flags without a login.
func (d *Device) PINState(ctx context.Context) (device.PINState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	resp, err := d.b.call(ctx, &wire.Request{Op: wire.OpTokenInfo, Token: d.tok.Ref()})
	if err != nil {
		return device.PINState{}, fmt.Errorf("pkcs11 token info: %w", err)
	}
	d.pin = pinState(resp.Flags)
	return d.pin, nil
}

// VerifyPIN checks pin with C_Login and logs out again.
func (d *Device) VerifyPIN(ctx context.Context, pin []byte) error {
	return d.pinOp(ctx, &wire.Request{Op: wire.OpLogin, PIN: pin})
}

// ChangePIN replaces the user PIN with C_SetPIN.
func (d *Device) ChangePIN(ctx context.Context, oldPIN, newPIN []byte) error {
	return d.pinOp(ctx, &wire.Request{Op: wire.OpSetPIN, PIN: oldPIN, NewPIN: newPIN})
}

// UnblockPIN logs in as security officer with the PUK (the SO PIN in
// PKCS#11 terms) and sets newPIN with C_InitPIN.
func (d *Device) UnblockPIN(ctx context.Context, puk, newPIN []byte) error {
	return d.pinOp(ctx, &wire.Request{Op: wire.OpUnblock, PIN: puk, NewPIN: newPIN})
}

// pinOp runs a PIN request and records the PIN state its outcome shows. The
// request's secrets belong to the caller, who wipes them.
func (d *Device) pinOp(ctx context.Context, req *wire.Request) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	req.Token = d.tok.Ref()
	_, err := d.b.call(ctx, req)
	d.notePINLocked(req.Op, err)
	if err != nil {
		return fmt.Errorf("pkcs11 %s: %w", req.Op, err)
	}
	return nil
}

// notePINLocked updates the PIN state after an operation that used the user
// PIN (not after an unblock's wrong PUK).
func (d *Device) notePINLocked(op string, err error) {
	var pi *hwerr.PINIncorrect
	switch {
	case err == nil:
		d.pin = device.PINState{}
	case errors.As(err, &pi) && pi.What != "PUK":
		d.pin = device.PINStateOf(pi.RetriesLeft)
	case errors.Is(err, hwerr.ErrPINBlocked):
		d.pin = device.PINStateOf(hwerr.TriesLeft(0))
	}
}

// Sign signs req.Digest with the key whose CKA_ID is req.Key (hex), logging
// in with req.PIN for the one operation. ECDSA signatures are ASN.1 DER.
func (d *Device) Sign(ctx context.Context, req device.SignRequest) ([]byte, error) {
	id, err := hex.DecodeString(req.Key)
	i := slices.IndexFunc(d.keys, func(k device.Key) bool { return k.ID == hex.EncodeToString(id) })
	if err != nil || i < 0 {
		return nil, fmt.Errorf("pkcs11 sign: key %q: %w", req.Key, hwerr.ErrNotFound)
	}
	if key := d.keys[i]; !req.Algorithm.Fits(key.Public) {
		return nil, fmt.Errorf("pkcs11 sign: %s with the %s key %s: %w", req.Algorithm, key.Algorithm, key.ID, hwerr.ErrNotSupported)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	wreq := &wire.Request{Op: wire.OpSign, Token: d.tok.Ref(), KeyID: id, Algorithm: string(req.Algorithm), Digest: req.Digest, PIN: req.PIN}
	resp, err := d.b.call(ctx, wreq)
	if len(req.PIN) > 0 {
		d.notePINLocked(wire.OpSign, err)
	}
	if err != nil {
		return nil, fmt.Errorf("pkcs11 sign: %w", err)
	}
	return resp.Signature, nil
}
