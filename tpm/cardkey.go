package tpm

import (
	"context"
	"crypto"
)

// PINSigner is what presents a virtual card to its users needs of it (the
// daemon's backend, a PIV applet answering VERIFY and GENERAL
// AUTHENTICATE): a PIN check that answers with the tries left or blocked,
// the counters, and a PIN-checked signature. *CardKey implements it.
type PINSigner interface {
	// VerifyPIN checks pin: nil, *hwerr.PINIncorrect (RetriesLeft) or
	// hwerr.ErrPINBlocked. It zeroes pin.
	VerifyPIN(ctx context.Context, pin []byte) error
	// Tries reads the counters without spending a try.
	Tries(ctx context.Context) (Tries, error)
	// Sign checks pin as VerifyPIN does and signs digest (the
	// opts.HashFunc() hash of the message). It zeroes pin.
	Sign(ctx context.Context, pin, digest []byte, opts crypto.SignerOpts) ([]byte, error)
	// Public is the card's public key.
	Public() crypto.PublicKey
}

// CardKey is one card of one TPM as a PINSigner.
type CardKey struct {
	t    *TPM
	card *Card
	pub  crypto.PublicKey
}

var _ PINSigner = (*CardKey)(nil)

// Key returns card as a PINSigner on t.
func (t *TPM) Key(card *Card) (*CardKey, error) {
	pub, err := publicKey(card.KeyPublic)
	if err != nil {
		return nil, err
	}
	return &CardKey{t: t, card: card, pub: pub}, nil
}

// VerifyPIN implements PINSigner.
func (k *CardKey) VerifyPIN(ctx context.Context, pin []byte) error {
	return k.t.VerifyPIN(ctx, k.card, pin)
}

// Tries implements PINSigner.
func (k *CardKey) Tries(ctx context.Context) (Tries, error) { return k.t.Tries(ctx, k.card) }

// Sign implements PINSigner.
func (k *CardKey) Sign(ctx context.Context, pin, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.t.Sign(ctx, k.card, pin, digest, opts)
}

// Public implements PINSigner.
func (k *CardKey) Public() crypto.PublicKey { return k.pub }
