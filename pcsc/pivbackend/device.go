package pivbackend

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hwauthd/hwauthd/daemon/backend"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
)

// Device is one PIV card in a reader. It owns the card's PC/SC connection and
// serializes every operation on it; each operation runs inside a PC/SC
// transaction so other applications cannot interleave APDUs, and ends by
// dropping the PIN's security status, so a verified PIN never outlives the
// request that gave it.
type Device struct {
	card   *pcsc.Card
	client *piv.Client

	mu     sync.Mutex // held for every card operation; guards the fields below
	info   ipc.Authenticator
	certs  map[string]*x509.Certificate
	closed bool
}

var _ backend.Device = (*Device)(nil)

// Open connects to the card in reader, selects the PIV application and reads
// what identifies it: CHUID, certificates and PIN state.
func Open(ctx context.Context, reader string) (*Device, error) {
	card, err := pcsc.Connect(ctx, reader)
	if err != nil {
		return nil, err
	}
	d := &Device{card: card, client: piv.NewClient(card), certs: map[string]*x509.Certificate{}}
	if err := d.card.Transaction(ctx, func() error { return d.readLocked(ctx, reader) }); err != nil {
		card.Close()
		return nil, err
	}
	return d, nil
}

// readLocked reads the card's identity; d.mu need not be held during Open,
// as no one else knows d yet.
func (d *Device) readLocked(ctx context.Context, reader string) error {
	if _, err := d.client.Select(ctx); err != nil {
		return fmt.Errorf("select PIV application: %w", err)
	}
	chuid, err := d.client.ReadCHUID(ctx)
	if err != nil {
		return fmt.Errorf("read CHUID: %w", err)
	}
	info := ipc.Authenticator{
		ID:      idPrefix + hex.EncodeToString(chuid.GUID[:]),
		Kind:    ipc.KindSmartcard,
		Backend: ipc.BackendPIV,
		Reader:  reader,
		Label:   "PIV card",
		Serial:  chuid.Serial(),
		Keys:    []ipc.Key{},
	}
	for _, slot := range piv.Slots {
		cert, err := d.client.Certificate(ctx, slot)
		if errors.Is(err, hwerr.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read certificate %s: %w", slot, err)
		}
		key, err := keyInfo(slot, cert)
		if err != nil {
			return err
		}
		if slot == piv.SlotAuthentication && cert.Subject.CommonName != "" {
			info.Label = cert.Subject.CommonName
		}
		d.certs[key.ID] = cert
		info.Keys = append(info.Keys, key)
	}
	info.PIN, _ = d.pinStateLocked(ctx)
	d.info = info
	return nil
}

// keyInfo describes a slot's key from its certificate.
func keyInfo(slot piv.Slot, cert *x509.Certificate) (ipc.Key, error) {
	alg, err := keyAlgorithm(cert.PublicKey)
	if err != nil {
		return ipc.Key{}, fmt.Errorf("slot %s: %w", slot, err)
	}
	return ipc.Key{
		ID:          slot.String(),
		Algorithm:   alg,
		PublicKey:   string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: cert.RawSubjectPublicKeyInfo})),
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
	}, nil
}

// keyAlgorithm names a public key as the API does.
func keyAlgorithm(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ecc-p" + fmt.Sprint(k.Curve.Params().BitSize), nil
	case *rsa.PublicKey:
		return "rsa-" + fmt.Sprint(k.N.BitLen()), nil
	}
	return "", fmt.Errorf("unsupported key type %T: %w", pub, hwerr.ErrNotSupported)
}

// Info describes the card with the PIN state last seen.
func (d *Device) Info() ipc.Authenticator {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.info
}

// Close drops the connection; later operations fail with hwerr.ErrRemoved.
func (d *Device) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		d.card.Close()
	}
}

// PINState reads the retry counter with an empty VERIFY, which spends no
// try.
func (d *Device) PINState(ctx context.Context) (ipc.PINState, error) {
	var st ipc.PINState
	err := d.do(ctx, func() (err error) {
		st, err = d.pinStateLocked(ctx)
		return err
	})
	return st, err
}

func (d *Device) pinStateLocked(ctx context.Context) (ipc.PINState, error) {
	st, err := d.client.PINStatus(ctx)
	if err != nil {
		return d.info.PIN, err
	}
	d.info.PIN = ipc.PINState{Blocked: st.Blocked, Verified: st.Verified}
	if st.RetriesLeft >= 0 {
		n := st.RetriesLeft
		d.info.PIN.RetriesLeft = &n
	}
	return d.info.PIN, nil
}

// VerifyPIN checks pin on the card, then drops the security status.
func (d *Device) VerifyPIN(ctx context.Context, pin []byte) error {
	return d.doWithPIN(ctx, func() error { return d.client.VerifyPIN(ctx, pin) })
}

// ChangePIN replaces the PIN (CHANGE REFERENCE DATA).
func (d *Device) ChangePIN(ctx context.Context, oldPIN, newPIN []byte) error {
	return d.doWithPIN(ctx, func() error { return d.client.ChangePIN(ctx, oldPIN, newPIN) })
}

// UnblockPIN resets the PIN's counter with the PUK (RESET RETRY COUNTER).
func (d *Device) UnblockPIN(ctx context.Context, puk, newPIN []byte) error {
	return d.doWithPIN(ctx, func() error { return d.client.UnblockPIN(ctx, puk, newPIN) })
}

// Sign verifies the PIN when one is given and signs with the slot's key
// (GENERAL AUTHENTICATE).
func (d *Device) Sign(ctx context.Context, req backend.SignRequest) ([]byte, error) {
	slot, err := piv.ParseSlot(strings.ToLower(req.Key))
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", req.Key, hwerr.ErrNotFound)
	}
	var sig []byte
	err = d.doWithPIN(ctx, func() error {
		if _, ok := d.certs[slot.String()]; !ok {
			return fmt.Errorf("no key in slot %s: %w", slot, hwerr.ErrNotFound)
		}
		if len(req.PIN) > 0 {
			if err := d.client.VerifyPIN(ctx, req.PIN); err != nil {
				return err
			}
		}
		var err error
		sig, err = d.client.Sign(ctx, slot, piv.Algorithm(req.Algorithm), req.Digest)
		return err
	})
	return sig, err
}

// doWithPIN runs a PIN operation, refreshes the PIN state from its result
// and drops the security status afterwards.
func (d *Device) doWithPIN(ctx context.Context, fn func() error) error {
	return d.do(ctx, func() error {
		err := fn()
		d.notePINResult(err)
		if lerr := d.client.Logout(ctx); lerr != nil && err == nil && !errors.Is(lerr, hwerr.ErrNotSupported) {
			err = fmt.Errorf("drop PIN status: %w", lerr)
		}
		return err
	})
}

// notePINResult updates the cached PIN state from a PIN operation's error.
func (d *Device) notePINResult(err error) {
	var wrong *hwerr.PINIncorrect
	switch {
	case errors.As(err, &wrong) && wrong.What != "PUK" && wrong.RetriesLeft >= 0:
		n := wrong.RetriesLeft
		d.info.PIN = ipc.PINState{RetriesLeft: &n, Blocked: n == 0}
	case errors.Is(err, hwerr.ErrPINBlocked):
		zero := 0
		d.info.PIN = ipc.PINState{RetriesLeft: &zero, Blocked: true}
	}
}

// do runs fn with the device lock and a PC/SC transaction held. When another
// application reset the card, the operation was not done: the application is
// selected again for the next request and the caller is told to try again
// (the daemon never repeats a PIN operation by itself).
func (d *Device) do(ctx context.Context, fn func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("card in %s: %w", d.info.Reader, hwerr.ErrRemoved)
	}
	err := d.card.Transaction(ctx, fn)
	if errors.Is(err, pcsc.ErrCardReset) {
		if serr := d.card.Transaction(ctx, func() error { _, err := d.client.Select(ctx); return err }); serr != nil {
			return serr
		}
		return fmt.Errorf("another application reset the card; try again: %w", hwerr.ErrBusy)
	}
	return err
}
