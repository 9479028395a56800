package vscbackend

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/hwauthd/hwauthd/daemon/backend"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/certutil"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/store"
	"github.com/hwauthd/hwauthd/tpm"
)

// keyID is the id of a virtual card's single key, as for a PIV card's
// authentication key.
const keyID = "9a"

// Device is one virtual smart card. Its operations are serialized; the TPM
// engine serializes the TPM itself.
type Device struct {
	b *Backend

	mu   sync.Mutex // guards card and gone
	card *tpm.Card
	gone bool
}

var _ backend.Device = (*Device)(nil)

func (d *Device) id() string { return idPrefix + d.card.ID }

// Info describes the card as an authenticator.
func (d *Device) Info() ipc.Authenticator {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.card
	key := ipc.Key{
		ID:        keyID,
		Algorithm: c.Algorithm,
		PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: c.PublicKey})),
	}
	if len(c.Certificate) > 0 {
		key.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate}))
	}
	return ipc.Authenticator{
		ID:      idPrefix + c.ID,
		Kind:    ipc.KindVirtualSmartcard,
		Backend: ipc.BackendTPM,
		Label:   c.Label,
		Serial:  c.ID,
		Device:  c.DeviceID,
		PIN:     pinState(c),
		Keys:    []ipc.Key{key},
	}
}

func pinState(c *tpm.Card) ipc.PINState {
	n := c.PINTriesLeft
	return ipc.PINState{RetriesLeft: &n, Blocked: n == 0}
}

// describe is the card as the provisioning API shows it.
func (d *Device) describe() ipc.VirtualSmartcard {
	d.mu.Lock()
	defer d.mu.Unlock()
	return describe(d.card)
}

func describe(c *tpm.Card) ipc.VirtualSmartcard {
	v := ipc.VirtualSmartcard{
		ID:             idPrefix + c.ID,
		Label:          c.Label,
		Algorithm:      c.Algorithm,
		PublicKey:      string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: c.PublicKey})),
		Device:         c.DeviceID,
		PINRetriesLeft: c.PINTriesLeft,
		CreatedAt:      c.CreatedAt,
	}
	if len(c.Certificate) > 0 {
		v.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate}))
	}
	return v
}

// PINState is the card's own counter; reading it touches nothing.
func (d *Device) PINState(ctx context.Context) (ipc.PINState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return pinState(d.card), nil
}

// VerifyPIN unseals the card's key secret with the PIN in the TPM.
func (d *Device) VerifyPIN(ctx context.Context, pin []byte) error {
	return d.do(ctx, func(t *tpm.TPM) error {
		return t.VerifyPIN(ctx, d.card, clone(pin), d.b.save(ctx))
	})
}

// ChangePIN seals the key secret under a new PIN; key and certificate stay.
func (d *Device) ChangePIN(ctx context.Context, oldPIN, newPIN []byte) error {
	return d.do(ctx, func(t *tpm.TPM) error {
		return t.ChangePIN(ctx, d.card, clone(oldPIN), clone(newPIN), d.b.save(ctx))
	})
}

// UnblockPIN unseals the key secret with the PUK and seals it under newPIN.
func (d *Device) UnblockPIN(ctx context.Context, puk, newPIN []byte) error {
	return d.do(ctx, func(t *tpm.TPM) error {
		return t.UnblockPIN(ctx, d.card, clone(puk), clone(newPIN), d.b.save(ctx))
	})
}

// Sign signs in the TPM after the PIN unlocks the key.
func (d *Device) Sign(ctx context.Context, req backend.SignRequest) ([]byte, error) {
	if req.Key != keyID {
		return nil, fmt.Errorf("a virtual smart card has one key, %q, not %q: %w", keyID, req.Key, hwerr.ErrNotFound)
	}
	if len(req.PIN) == 0 {
		return nil, fmt.Errorf("signing with a virtual smart card: %w", hwerr.ErrPINRequired)
	}
	opts, err := signerOpts(req.Algorithm)
	if err != nil {
		return nil, err
	}
	var sig []byte
	err = d.do(ctx, func(t *tpm.TPM) error {
		var err error
		sig, err = t.Sign(ctx, d.card, clone(req.PIN), d.b.save(ctx), req.Digest, opts)
		return err
	})
	return sig, err
}

// signerOpts maps the API's algorithm names to crypto.SignerOpts.
func signerOpts(alg string) (crypto.SignerOpts, error) {
	switch alg {
	case "ecdsa-sha256", "rsa-pkcs1v15-sha256":
		return crypto.SHA256, nil
	case "ecdsa-sha384":
		return crypto.SHA384, nil
	case "rsa-pss-sha256":
		return &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: rsa.PSSSaltLengthEqualsHash}, nil
	}
	return nil, fmt.Errorf("algorithm %q: %w", alg, hwerr.ErrNotSupported)
}

// csr builds a certificate signing request signed in the TPM.
func (d *Device) csr(ctx context.Context, req ipc.CSRRequest) ([]byte, error) {
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
		signer, done, err := t.Signer(ctx, d.card, clone(req.PIN), d.b.save(ctx))
		if err != nil {
			return err
		}
		defer done()
		der, err = x509.CreateCertificateRequest(rand.Reader, tmpl, signer)
		return err
	})
	return der, err
}

// destroy removes the card's key from the TPM and its record from the store.
func (d *Device) destroy(ctx context.Context, t *tpm.TPM, state store.DeviceState) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := t.DestroyCard(ctx, d.card); err != nil {
		return err
	}
	if err := state.DeleteCard(ctx, d.card.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	d.gone = true
	return nil
}

// do runs fn on the card with the card locked and the TPM open.
func (d *Device) do(ctx context.Context, fn func(*tpm.TPM) error) error {
	t, err := d.b.engine()
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		return fmt.Errorf("virtual smart card deleted: %w", hwerr.ErrRemoved)
	}
	return fn(t)
}

// clone copies a secret for the engine, which zeroes what it is given: the
// caller's buffer stays its own to wipe.
func clone(b []byte) []byte { return slices.Clone(b) }
