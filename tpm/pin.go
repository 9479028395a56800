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

// secretKind names a card secret: the PIN or the PUK.
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

// authValue derives an index's authValue from a PIN or PUK: SHA-256 over a
// domain label, the kind, the card's random salt and the secret, of which
// 24 bytes are kept and written as 32 base64 characters (see authText).
// The salt makes equal PINs on two cards give unrelated authValues;
// guessing is bounded by the TPM (every guess is an authorization with
// the index's authValue, counted by the index), so a slow KDF would add
// nothing.
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
// the most a SHA-256 index's authValue may hold). An authValue must not
// contain a zero byte: go-tpm v0.9.8 cuts an HMAC key at its first zero
// byte (hmacKeyFromAuthValue) where the TPM only drops trailing zeros, and
// keeps trailing zeros in the parameter-encryption key; either would make
// a right PIN fail one time in eight.
func authText(b []byte) []byte {
	out := make([]byte, base64.RawStdEncoding.EncodedLen(len(b)))
	base64.RawStdEncoding.Encode(out, b)
	return out
}

// Tries is what a card's counters say, read from the TPM.
type Tries struct {
	// PIN is how many wrong PINs the card still takes (0: blocked); the
	// TPM always says.
	PIN hwerr.Tries
	// PUK is the same for the PUK; a card without PUK has no counter to
	// report, and PUK is the zero value (unknown).
	PUK hwerr.Tries
}

// FreshTries is what card's counters say when no wrong try is counted: on
// a new card, and what a right PIN resets the PIN's counter to (a right
// PUK, both).
func (c *Card) FreshTries() Tries {
	out := Tries{PIN: hwerr.TriesLeft(c.PINTries)}
	if c.PUK != nil {
		out.PUK = hwerr.TriesLeft(c.PUKTries)
	}
	return out
}

// Tries reads the card's counters from its indices; reading them does not
// count as a try.
func (t *TPM) Tries(ctx context.Context, card *Card) (Tries, error) {
	if err := t.lock(ctx); err != nil {
		return Tries{}, err
	}
	defer t.unlock()
	if err := t.checkCardLocked(card); err != nil {
		return Tries{}, err
	}
	return t.triesLocked(card)
}

func (t *TPM) triesLocked(card *Card) (Tries, error) {
	pin, err := t.readCounterLocked(&card.PIN)
	if err != nil {
		return Tries{}, err
	}
	out := Tries{PIN: pin.left()}
	if card.PUK != nil {
		puk, err := t.readCounterLocked(card.PUK)
		if err != nil {
			return Tries{}, err
		}
		out.PUK = puk.left()
	}
	return out, nil
}

// VerifyPIN checks pin against card in the TPM (TPM2_PolicySecret on the
// card's PIN index). The TPM counts: a wrong PIN increments the index's
// pinCount before the TPM answers, so neither a crash nor a lost answer
// gives a free try; a right one resets it. A wrong PIN is
// *hwerr.PINIncorrect with the tries left, the try that uses up the last
// one and every later call hwerr.ErrPINBlocked. The TPM's
// dictionary-attack lockout never applies: the index is exempt
// (TPMA_NV_NO_DA). VerifyPIN zeroes pin.
func (t *TPM) VerifyPIN(ctx context.Context, card *Card, pin []byte) error {
	defer clear(pin)
	if err := t.lock(ctx); err != nil {
		return err
	}
	defer t.unlock()
	if err := t.checkCardLocked(card); err != nil {
		return err
	}
	return t.verifyLocked(card, pin)
}

// verifyLocked has the TPM check pin: PolicySecret on the card's PIN index
// in the held signing session, whose policy is then reset
// (TPM2_PolicyRestart), or the session flushed, so that the assertion is
// not left to be spent. Like signLocked, it tries once more when a held
// session was gone from the TPM (the PIN was not tried).
func (t *TPM) verifyLocked(card *Card, pin []byte) error {
	err := t.verifyOnceLocked(card, pin)
	if errors.Is(err, errHeldLost) {
		err = t.verifyOnceLocked(card, pin)
	}
	return err
}

// verifyOnceLocked is verifyLocked without the second try.
func (t *TPM) verifyOnceLocked(card *Card, pin []byte) error {
	s, err := t.signSessionLocked()
	if err != nil {
		return err
	}
	if err := t.policySecretOnLocked(s.handle, s.nonceTPM, card, pinSecret, pin); err != nil {
		t.dropSignSessionLocked()
		return err
	}
	if err := t.policyRestartLocked(s.handle); err != nil {
		t.dropSignSessionLocked() // the PIN was right; the assertion goes with the session
	}
	return nil
}

// policySecretLocked runs TPM2_PolicySecret (TPM 2.0 Part 3 §23.4) in
// policy session s on the card's index of kind, authorized with secret in
// a salted HMAC session, and turns the TPM's answer into the PIN errors.
func (t *TPM) policySecretLocked(s tpm2.Session, card *Card, kind secretKind, secret []byte) error {
	return t.policySecretOnLocked(s.Handle(), s.NonceTPM().Buffer, card, kind, secret)
}

// policySecretOnLocked is policySecretLocked on the policy session with
// handle h and last nonceTPM nonce.
func (t *TPM) policySecretOnLocked(h tpm2.TPMHandle, nonce []byte, card *Card, kind secretKind, secret []byte) error {
	if len(secret) == 0 {
		return fmt.Errorf("verify %s: %w", kind, hwerr.ErrPINRequired)
	}
	x := &card.PIN
	if kind == pukSecret {
		if card.PUK == nil {
			return fmt.Errorf("this virtual smart card has no PUK; ask IT to unblock it: %w", hwerr.ErrNotSupported)
		}
		x = card.PUK
	}
	auth := card.authValue(kind, secret)
	defer clear(auth)
	ps, err := t.pinSessionLocked()
	if err != nil {
		return err
	}
	err = t.sendPolicySecretLocked(ps, auth, x, h, nonce)
	if err == nil {
		return nil
	}
	if t.heldLostLocked(err) {
		// Refused before the authorization was checked: no try counted.
		return fmt.Errorf("verify %s: %w: %v", kind, errHeldLost, err)
	}
	var rc tpm2.TPMRC
	if !errors.As(err, &rc) {
		// Not sent, no answer, or one that does not authenticate: the
		// session's state is unknown.
		t.dropPINSessionLocked()
	}
	return t.secretErrorLocked(kind, x, err)
}

// sendPolicySecretLocked sends TPM2_PolicySecret on index x for policy
// session h, whose last nonceTPM nonce binds the assertion to the
// session's present state, authorized by ps with authValue auth; no
// cpHashA, policyRef or expiration.
func (t *TPM) sendPolicySecretLocked(ps *pinSession, auth []byte, x *NVIndex, h tpm2.TPMHandle, nonce []byte) error {
	const cc = tpm2.TPMCCPolicySecret
	params := make([]byte, 0, 2+len(nonce)+2+2+4)
	params = append2B(params, nonce)
	params = append2B(params, nil)      // cpHashA
	params = append2B(params, nil)      // policyRef
	params = be.AppendUint32(params, 0) // expiration
	// A session's name is its handle (Part 1 §16).
	authz := ps.authorize(auth, cc, params, x.Name, be.AppendUint32(nil, uint32(h)))
	rparams, rauth, err := t.sendCommand(marshalCommand(cc, []tpm2.TPMHandle{tpm2.TPMHandle(x.Handle), h}, authz, params))
	if err != nil {
		return err
	}
	return ps.validate(auth, cc, rparams, rauth)
}

// secretErrorLocked maps a failed authorization with a PIN or PUK index.
// The index's name is checked here, on the failure path: a PolicySecret
// that succeeded was computed over the recorded name, so it was the card's
// index; a failed one may have met a deleted or replaced index.
func (t *TPM) secretErrorLocked(kind secretKind, x *NVIndex, err error) error {
	if errors.Is(err, tpm2.TPMRCHandle) {
		return errCardGone
	}
	if cerr := t.checkIndexLocked(x); cerr != nil {
		return cerr
	}
	switch {
	case errors.Is(err, tpm2.TPMRCBadAuth), errors.Is(err, tpm2.TPMRCAuthFail):
		c, rerr := t.readCounterLocked(x)
		if rerr != nil {
			return fmt.Errorf("verify %s: wrong, and the counter does not read: %w", kind, rerr)
		}
		if c.left().Exhausted() {
			return blockedError(kind)
		}
		return &hwerr.PINIncorrect{What: kind.String(), RetriesLeft: c.left()}
	case errors.Is(err, tpm2.TPMRCAuthUnavailable):
		// The TPM refuses the authValue: pinCount reached pinLimit.
		return blockedError(kind)
	case errors.Is(err, tpm2.TPMRCHandle):
		return errCardGone
	}
	return fmt.Errorf("verify %s: %w", kind, classify(err))
}

func blockedError(kind secretKind) error {
	if kind == pukSecret {
		return fmt.Errorf("the PUK is blocked after too many wrong tries; the virtual smart card must be deleted and created again: %w",
			hwerr.ErrPUKBlocked)
	}
	return fmt.Errorf("the PIN is blocked after too many wrong tries; unblock it with the PUK or ask IT: %w",
		hwerr.ErrPINBlocked)
}

// ChangePIN sets a new PIN after the TPM checked the old one (counted as
// in VerifyPIN): TPM2_NV_ChangeAuth on the PIN index, authorized by the
// approved branch of its policy (PolicySecret with the old PIN). The key,
// its certificate and the card record stay the same; the old PIN opens
// nothing any more. newPIN must meet the Policy (checked before the old
// PIN is tried). It zeroes both PINs.
func (t *TPM) ChangePIN(ctx context.Context, card *Card, oldPIN, newPIN []byte) error {
	defer clear(oldPIN)
	return t.newPIN(ctx, card, newPIN, func() error {
		return t.changeAuthLocked(card, func(s tpm2.Session) error {
			if err := t.policySecretLocked(s, card, pinSecret, oldPIN); err != nil {
				return err
			}
			return t.approvedBranchLocked(s, card)
		}, card.authValue(pinSecret, newPIN))
	})
}

// newPIN checks newPIN against the policy and runs set with the TPM
// locked and the card checked. It zeroes newPIN.
func (t *TPM) newPIN(ctx context.Context, card *Card, newPIN []byte, set func() error) error {
	defer clear(newPIN)
	if err := t.policy.CheckPIN("new PIN", newPIN); err != nil {
		return err
	}
	if err := t.lock(ctx); err != nil {
		return err
	}
	defer t.unlock()
	if err := t.checkCardLocked(card); err != nil {
		return err
	}
	return set()
}

// UnblockPIN sets a new PIN with the PUK and resets the PIN counter: two
// commands on the PIN index, each authorized by PolicySecret on the PUK
// index (whose own counter, Policy.PUKTries, the TPM keeps the same way;
// when it runs out, hwerr.ErrPUKBlocked). The new PIN is set first, so
// that a crash between the two leaves the card blocked under the new PIN,
// never open under the old one. It zeroes puk and newPIN.
func (t *TPM) UnblockPIN(ctx context.Context, card *Card, puk, newPIN []byte) error {
	defer clear(puk)
	return t.newPIN(ctx, card, newPIN, func() error {
		return t.unblockLocked(card, puk, newPIN)
	})
}

func (t *TPM) unblockLocked(card *Card, puk, newPIN []byte) error {
	err := t.changeAuthLocked(card, func(s tpm2.Session) error {
		if err := t.policySecretLocked(s, card, pukSecret, puk); err != nil {
			return err
		}
		_, err := (tpm2.PolicyCommandCode{PolicySession: s.Handle(), Code: tpm2.TPMCCNVChangeAuth}).Execute(t.tr)
		return err
	}, card.authValue(pinSecret, newPIN))
	if err != nil {
		return err
	}
	return t.withPolicyLocked(func(s tpm2.Session) error {
		if err := t.policySecretLocked(s, card, pukSecret, puk); err != nil {
			return err
		}
		return t.finishBranchLocked(s, &card.PIN, tpm2.TPMCCNVWrite)
	}, func(s tpm2.Session) error {
		_, err := tpm2.NVWrite{
			AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(card.PIN.Handle), Name: card.PIN.named().Name, Auth: s},
			NVIndex:    card.PIN.named(),
			Data:       tpm2.TPM2BMaxNVBuffer{Buffer: counter{0, uint32(card.PINTries)}.bytes()},
		}.Execute(t.tr)
		if err != nil {
			return fmt.Errorf("reset PIN counter: %w", classify(err))
		}
		return nil
	})
}

// changeAuthLocked sets the PIN index's authValue to newAuth (zeroed
// after) in a policy session whose assertions policy runs; the branch
// ends with the PolicyOR over the index's branches.
func (t *TPM) changeAuthLocked(card *Card, policy func(tpm2.Session) error, newAuth []byte) error {
	defer clear(newAuth)
	x := &card.PIN
	return t.withPolicyLocked(func(s tpm2.Session) error {
		if err := policy(s); err != nil {
			return err
		}
		_, err := tpm2.PolicyOr{PolicySession: s.Handle(), PHashList: orList(x.Branches)}.Execute(t.tr)
		return err
	}, func(s tpm2.Session) error {
		if err := nvChangeAuth(t.tr, x.named(), newAuth, s, t.encryptSession()); err != nil {
			return fmt.Errorf("set new PIN: %w", classify(err))
		}
		return nil
	})
}
