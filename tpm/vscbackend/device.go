package vscbackend

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/certutil"
	"github.com/hwauthd/hwauthd/tpm"
)

// keyID is the id of a virtual card's single key, as for a PIV card's
// authentication key.
const keyID = "9a"

// Device is one virtual smart card. Its operations are serialized; the TPM
// engine serializes the TPM itself.
type Device struct {
	b *Backend

	mu    sync.Mutex // guards card, key, tries and gone
	card  *tpm.Card
	key   device.Key // the card's key, parsed once
	tries tpm.Tries  // the TPM's counters as last seen
	gone  bool
}

var _ device.Device = (*Device)(nil)

func (d *Device) id() string { return idPrefix + d.card.ID }

// Info describes the card as an authenticator.
func (d *Device) Info() device.Info {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.card
	return device.Info{
		ID:      idPrefix + c.ID,
		Kind:    device.KindVirtualSmartcard,
		Backend: device.BackendTPM,
		Label:   c.Label,
		Serial:  c.ID,
		Device:  c.DeviceID,
		PIN:     pinState(d.tries),
		Keys:    []device.Key{d.key},
	}
}

func pinState(tr tpm.Tries) device.PINState {
	return device.PINStateOf(tr.PIN)
}

// describe is the card as the provisioning API shows it.
func (d *Device) describe() device.VirtualCard {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.describeLocked()
}

func (d *Device) describeLocked() device.VirtualCard {
	c := d.card
	return device.VirtualCard{
		ID:             idPrefix + c.ID,
		Label:          c.Label,
		Key:            d.key,
		Device:         c.DeviceID,
		PINRetriesLeft: d.tries.PIN,
		CreatedAt:      c.CreatedAt,
	}
}

// PINState is the card's counter as the TPM last reported it (reading it
// again from the TPM costs no try; see refreshTries).
func (d *Device) PINState(ctx context.Context) (device.PINState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return pinState(d.tries), nil
}

var _ device.Recoverer = (*Device)(nil)

// Recover unsticks an operation on a TPM that stopped answering: the
// connection under it is closed, the operation fails as unavailable, and
// Run reconnects.
func (d *Device) Recover() {
	d.b.mu.Lock()
	t := d.b.tpm
	d.b.mu.Unlock()
	if t != nil {
		d.b.log.Warn("closing the connection to a TPM that stopped answering")
		_ = t.Abort()
	}
}

// VerifyPIN has the TPM check the PIN against the card's PIN index.
func (d *Device) VerifyPIN(ctx context.Context, pin []byte) error {
	return d.do(ctx, func(t *tpm.TPM) error {
		return d.noteTries(t.VerifyPIN(ctx, d.card, clone(pin)), pinTry)
	})
}

// ChangePIN sets a new PIN on the card's PIN index; key and certificate stay.
func (d *Device) ChangePIN(ctx context.Context, oldPIN, newPIN []byte) error {
	return d.do(ctx, func(t *tpm.TPM) error {
		return d.noteTries(t.ChangePIN(ctx, d.card, clone(oldPIN), clone(newPIN)), pinTry)
	})
}

// UnblockPIN sets a new PIN and resets its counter with the PUK.
func (d *Device) UnblockPIN(ctx context.Context, puk, newPIN []byte) error {
	return d.do(ctx, func(t *tpm.TPM) error {
		return d.noteTries(t.UnblockPIN(ctx, d.card, clone(puk), clone(newPIN)), pukTry)
	})
}

// Which counter an operation tried.
const (
	pinTry = "PIN"
	pukTry = "PUK"
)

// noteTries updates the cached counters from the result of a try of
// which (the TPM resets a counter on success) and returns err. d.mu is
// held.
func (d *Device) noteTries(err error, which string) error {
	var inc *hwerr.PINIncorrect
	switch {
	case err == nil && which == pukTry:
		d.tries = d.card.FreshTries()
	case err == nil:
		d.tries.PIN = d.card.FreshTries().PIN
	case errors.As(err, &inc) && inc.What == pukTry:
		d.tries.PUK = inc.RetriesLeft
	case errors.As(err, &inc):
		d.tries.PIN = inc.RetriesLeft
	case errors.Is(err, hwerr.ErrPINBlocked):
		d.tries.PIN = hwerr.TriesLeft(0)
	case errors.Is(err, hwerr.ErrPUKBlocked):
		d.tries.PUK = hwerr.TriesLeft(0)
	}
	return err
}

// Sign signs in the TPM after the PIN unlocks the key.
func (d *Device) Sign(ctx context.Context, req device.SignRequest) ([]byte, error) {
	if req.Key != keyID {
		return nil, fmt.Errorf("a virtual smart card has one key, %q, not %q: %w", keyID, req.Key, hwerr.ErrNotFound)
	}
	if len(req.PIN) == 0 {
		return nil, fmt.Errorf("signing with a virtual smart card: %w", hwerr.ErrPINRequired)
	}
	opts := req.Algorithm.SignerOpts()
	if opts == nil {
		return nil, fmt.Errorf("algorithm %q: %w", req.Algorithm, hwerr.ErrNotSupported)
	}
	if key := d.Info().Keys[0]; !req.Algorithm.Fits(key.Public) {
		return nil, fmt.Errorf("%s with the card's %s key: %w", req.Algorithm, key.Algorithm, hwerr.ErrNotSupported)
	}
	var sig []byte
	err := d.do(ctx, func(t *tpm.TPM) error {
		var err error
		sig, err = t.Sign(ctx, d.card, clone(req.PIN), req.Digest, opts)
		return d.noteTries(err, pinTry)
	})
	return sig, err
}

// csr builds a certificate signing request signed in the TPM.
func (d *Device) csr(ctx context.Context, req device.CSRRequest) ([]byte, error) {
	subject, err := certutil.ParseName(req.Subject)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, hwerr.ErrInvalidInput)
	}
	tmpl := &x509.CertificateRequest{Subject: subject, DNSNames: req.DNSNames, EmailAddresses: req.Emails}
	if req.UPN != "" {
		san, err := certutil.MarshalSAN([]string{req.UPN}, req.Emails, req.DNSNames)
		if err != nil {
			return nil, err
		}
		tmpl.DNSNames, tmpl.EmailAddresses = nil, nil
		tmpl.ExtraExtensions = []pkix.Extension{{Id: certutil.OIDSubjectAltName, Value: san}}
	}
	if len(req.PIN) == 0 {
		return nil, fmt.Errorf("a CSR is signed with the card's key: %w", hwerr.ErrPINRequired)
	}
	var der []byte
	err = d.do(ctx, func(t *tpm.TPM) error {
		signer, done, err := t.Signer(ctx, d.card, clone(req.PIN))
		if err := d.noteTries(err, pinTry); err != nil {
			return err
		}
		defer done()
		der, err = x509.CreateCertificateRequest(rand.Reader, tmpl, signer)
		return err
	})
	return der, err
}

// destroy deletes the card from the TPM and marks it gone; its record
// and registrations are the backend's to remove after.
func (d *Device) destroy(ctx context.Context, t *tpm.TPM) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := t.DestroyCard(ctx, d.card); err != nil {
		return err
	}
	d.gone = true
	return nil
}

// do runs fn on the card with the card locked and the TPM connected, and
// tells the backend whether the TPM answered.
func (d *Device) do(ctx context.Context, fn func(*tpm.TPM) error) error {
	t, err := d.b.engine(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		return fmt.Errorf("virtual smart card deleted: %w", hwerr.ErrRemoved)
	}
	err = fn(t)
	d.b.done(t, err)
	return err
}

// refreshTries reads the card's counters again (after a reconnection).
func (d *Device) refreshTries(ctx context.Context, t *tpm.TPM) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if tries, err := t.Tries(ctx, d.card); err == nil {
		d.tries = tries
	}
}

// clone copies a secret for the engine, which zeroes what it is given: the
// caller's buffer stays its own to wipe.
func clone(b []byte) []byte { return slices.Clone(b) }
