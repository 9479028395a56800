package tpm

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// secretKind names the secret a sealed copy of K is opened with.
type secretKind int

const (
	pinSecret secretKind = iota
	pukSecret
)

func (k secretKind) String() string {
	if k == pukSecret {
		return "PUK"
	}
	return "PIN"
}

// SaveFunc persists a card (transactionally) before the engine goes on. The
// engine calls it with the TPM locked: it must not call back into the TPM.
type SaveFunc func(*Card) error

// authValue derives the authValue of a sealed copy of K from a PIN or PUK:
// SHA-256 over a domain label, the kind, the card's random salt and the
// secret, of which 24 bytes are kept and written as 32 base64 characters
// (see authText). The salt makes equal PINs on two cards give unrelated
// authValues; guessing is bounded by the TPM (every guess is a
// TPM2_Unseal, counted by the card's counter and the TPM's
// dictionary-attack protection), so a slow KDF would add nothing.
func (c *Card) authValue(kind secretKind, secret []byte) []byte {
	h := sha256.New()
	h.Write([]byte("hwauthd virtual smart card authValue v1\x00"))
	h.Write([]byte(kind.String()))
	h.Write([]byte{0})
	h.Write(c.Salt)
	h.Write(secret)
	sum := h.Sum(nil)
	defer clear(sum)
	return authText(sum[:authEntropy])
}

// authEntropy is how many random bytes an authValue carries (192 bits).
const authEntropy = 24

// authText writes b as base64 text (authEntropy bytes give 32 characters,
// the most a SHA-256 object's authValue may hold). An authValue must not
// contain a zero byte: go-tpm v0.9.8 cuts an HMAC key at its first zero
// byte (hmacKeyFromAuthValue) where the TPM only drops trailing zeros, and
// keeps trailing zeros in the parameter-encryption key; either would make
// a right PIN fail one time in eight.
func authText(b []byte) []byte {
	out := make([]byte, base64.RawStdEncoding.EncodedLen(len(b)))
	base64.RawStdEncoding.Encode(out, b)
	return out
}

// newKeyAuth returns a fresh random authValue for a signing key (K).
func newKeyAuth() []byte {
	b := randomBytes(authEntropy)
	defer clear(b)
	return authText(b)
}

// VerifyPIN checks pin against card. The card's counter is decremented and
// the card saved BEFORE the TPM sees the PIN, so a crash cannot give a free
// try; on success the counter is reset and the card saved again. A wrong
// PIN is *hwerr.PINIncorrect with the tries left, the try that uses up the
// last one and every later call hwerr.ErrPINBlocked, and a TPM in
// dictionary-attack lockout hwerr.ErrLockout (that try is given back: the
// TPM did not check the PIN). VerifyPIN zeroes pin.
func (t *TPM) VerifyPIN(ctx context.Context, card *Card, pin []byte, save SaveFunc) error {
	defer clear(pin)
	if err := t.lock(ctx); err != nil {
		return err
	}
	defer t.unlock()
	k, err := t.unlockLocked(card, pinSecret, pin, save)
	clear(k)
	return err
}

// ChangePIN sets a new PIN after checking the old one (counted as in
// VerifyPIN): K is unsealed with the old PIN and sealed again under the new
// one, so the key and its certificate stay the same. newPIN must meet the
// Policy (checked before the old PIN is tried). It zeroes both PINs.
func (t *TPM) ChangePIN(ctx context.Context, card *Card, oldPIN, newPIN []byte, save SaveFunc) error {
	defer clear(oldPIN)
	defer clear(newPIN)
	return t.reseal(ctx, card, pinSecret, oldPIN, newPIN, save)
}

// UnblockPIN sets a new PIN with the PUK (its own counter, Policy.PUKTries;
// when it runs out, hwerr.ErrPUKBlocked) and resets the PIN counter, as
// ChangePIN does with the old PIN. It zeroes puk and newPIN.
func (t *TPM) UnblockPIN(ctx context.Context, card *Card, puk, newPIN []byte, save SaveFunc) error {
	defer clear(puk)
	defer clear(newPIN)
	return t.reseal(ctx, card, pukSecret, puk, newPIN, save)
}

// reseal opens K with secret (of kind) and seals it under newPIN.
func (t *TPM) reseal(ctx context.Context, card *Card, kind secretKind, secret, newPIN []byte, save SaveFunc) error {
	if err := t.policy.CheckPIN("new PIN", newPIN); err != nil {
		return err
	}
	if err := t.lock(ctx); err != nil {
		return err
	}
	defer t.unlock()
	k, err := t.unlockLocked(card, kind, secret, save)
	defer clear(k)
	if err != nil {
		return err
	}
	r, err := t.readRootLocked(card)
	if err != nil {
		return err
	}
	sealed, err := t.sealLocked(r, card.authValue(pinSecret, newPIN), k)
	if err != nil {
		return err
	}
	old, oldLeft := card.PINSealed, card.PINTriesLeft
	card.PINSealed, card.PINTriesLeft = sealed, card.PINTries
	if err := save(card); err != nil {
		card.PINSealed, card.PINTriesLeft = old, oldLeft
		return fmt.Errorf("save new PIN: %w", err)
	}
	return nil
}

// unlockLocked checks secret against card under its counter and returns
// K, which the caller zeroes. See VerifyPIN for the counting rules.
func (t *TPM) unlockLocked(card *Card, kind secretKind, secret []byte, save SaveFunc) ([]byte, error) {
	if save == nil {
		return nil, fmt.Errorf("verify %s: no save function: %w", kind, hwerr.ErrInvalidInput)
	}
	if len(secret) == 0 {
		return nil, fmt.Errorf("verify %s: %w", kind, hwerr.ErrPINRequired)
	}
	left, tries := card.counter(kind)
	if *left <= 0 {
		return nil, blockedError(kind)
	}
	r, err := t.readRootLocked(card)
	if err != nil {
		return nil, err
	}
	*left--
	if err := save(card); err != nil {
		*left++
		return nil, fmt.Errorf("verify %s: save try counter: %w", kind, err)
	}
	k, err := t.unsealLocked(r, card, kind, secret)
	switch {
	case err == nil:
		return k, t.resetCounter(card, kind, tries, save)
	case errors.Is(err, errAuthFailed) && *left == 0:
		return nil, blockedError(kind)
	case errors.Is(err, errAuthFailed):
		return nil, &hwerr.PINIncorrect{What: kind.String(), RetriesLeft: *left}
	case errors.Is(err, hwerr.ErrLockout):
		*left++
		return nil, errors.Join(err, save(card))
	default:
		return nil, fmt.Errorf("verify %s: %w", kind, err)
	}
}

// resetCounter restores the counter of kind after a right PIN or PUK and
// saves the card. (After a right PUK, reseal resets the PIN counter when it
// stores the new PIN.)
func (t *TPM) resetCounter(card *Card, kind secretKind, tries int, save SaveFunc) error {
	left, _ := card.counter(kind)
	*left = tries
	if err := save(card); err != nil {
		return fmt.Errorf("verify %s: save try counter: %w", kind, err)
	}
	return nil
}

// counter returns the tries-left field for kind and its starting value.
func (c *Card) counter(kind secretKind) (left *int, tries int) {
	if kind == pukSecret {
		return &c.PUKTriesLeft, c.PUKTries
	}
	return &c.PINTriesLeft, c.PINTries
}

func blockedError(kind secretKind) error {
	if kind == pukSecret {
		return fmt.Errorf("the PUK is blocked after too many wrong tries; the virtual smart card must be deleted and created again: %w",
			hwerr.ErrPUKBlocked)
	}
	return fmt.Errorf("the PIN is blocked after too many wrong tries; unblock it with the PUK or ask IT: %w",
		hwerr.ErrPINBlocked)
}

// unsealLocked opens the copy of K sealed under secret (TPM 2.0 Part 3
// §12.7 TPM2_Unseal) in a salted session with response encryption, so
// neither the PIN-derived authValue nor K crosses the bus in clear.
func (t *TPM) unsealLocked(r root, card *Card, kind secretKind, secret []byte) ([]byte, error) {
	sealed := card.PINSealed
	if kind == pukSecret {
		sealed = card.PUKSealed
	}
	h, err := t.loadLocked(r, sealed.Public, sealed.Private)
	if err != nil {
		return nil, err
	}
	defer t.flushLocked(h.Handle)
	auth := card.authValue(kind, secret)
	defer clear(auth)
	rsp, err := tpm2.Unseal{
		ItemHandle: tpm2.AuthHandle{Handle: h.Handle, Name: h.Name, Auth: secretSession(r, auth, encryptOut)},
	}.Execute(t.tr)
	if err != nil {
		return nil, classify(err)
	}
	return rsp.OutData.Buffer, nil
}
