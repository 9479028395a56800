// Package vscpiv presents a TPM virtual smart card as a PIV card: it is the
// pivcard.Store of the PIV applet over the virtual card the TPM backend
// serves, so PC/SC applications use the card's TPM key after its PIN exactly
// as with a physical PIV card.
//
// Every PIN and PUK check is the virtual card's own, counted on its TPM
// counter; this package keeps no second copy of a PIN, a counter or a key.
// The card is provisioned by IT through hwauthd's API only: the applet
// refuses GENERATE, PUT DATA and every management-key command for it, as
// this store offers no pivcard.Provisioner.
package vscpiv

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/emsa"
	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// opTimeout bounds one card operation started by an APDU; the applet's
// interface has no context, as a card's I/O line has none.
const opTimeout = 30 * time.Second

// slot is the PIV slot of a virtual card's single key.
const slot = piv.SlotAuthentication

// Attempt reports one PIN or PUK attempt made through the card's PIV
// interface, for the card owner's event: what was checked ("PIN" or "PUK")
// and its outcome (nil, *hwerr.PINIncorrect or a blocked error).
type Attempt struct {
	What string
	Err  error
}

// Store is the pivcard.Store of one virtual smart card.
type Store struct {
	card      device.Device
	onAttempt func(Attempt)
}

var _ pivcard.Store = (*Store)(nil)

// New returns the store of card, a virtual smart card of the TPM backend.
// onAttempt, when not nil, is called after every PIN or PUK attempt.
func New(card device.Device, onAttempt func(Attempt)) *Store {
	return &Store{card: card, onAttempt: onAttempt}
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// Label implements pivcard.Store.
func (s *Store) Label() string { return s.card.Info().Label }

// certificate returns the DER certificate IT imported, or nil.
func (s *Store) certificate() []byte {
	info := s.card.Info()
	if len(info.Keys) == 0 || info.Keys[0].Certificate == nil {
		return nil
	}
	return info.Keys[0].Certificate.Raw
}

// Object implements pivcard.Store: the CHUID, whose GUID is the card's id,
// and the 9A certificate once IT imported one.
func (s *Store) Object(tag uint32) []byte {
	switch tag {
	case piv.TagCHUID:
		return s.chuid()
	case slot.ObjectTag():
		cert := s.certificate()
		if cert == nil {
			return nil
		}
		return pivcard.CertificateContent(cert)
	}
	return nil
}

// chuid builds the CHUID content: a FASC-N with agency code 9999 (no
// agency), the card's id as GUID, no expiry.
func (s *Store) chuid() []byte {
	guid, err := hex.DecodeString(s.card.Info().Serial)
	if err != nil || len(guid) != 16 {
		guid = make([]byte, 16)
	}
	f := piv.FASCN{Agency: "9999", System: "9999", Credential: "000000", Series: "1", Issue: "1",
		Person: "0000000000", OrgCat: "1", Org: "9999", Assoc: "1"}
	fascn, err := f.Encode()
	if err != nil {
		return nil
	}
	return pivcard.CHUIDContent(fascn, guid, "99991231")
}

// Key implements pivcard.Store: the card's key is in 9A.
func (s *Store) Key(sl piv.Slot) (piv.KeyAlg, bool) {
	if sl != slot {
		return 0, false
	}
	info := s.card.Info()
	if len(info.Keys) == 0 {
		return 0, false
	}
	alg, err := piv.KeyAlgOf(info.Keys[0].Public)
	return alg, err == nil
}

// Sign implements pivcard.Store: the TPM signs after the card's PIN,
// verified on the TPM again. An ECDSA challenge is the digest; an RSA one
// must be a PKCS#1 v1.5 block over a SHA-256 DigestInfo, as the TPM key
// signs with a scheme, not with a raw private-key operation (PSS, padded by
// the client with its own salt, cannot be done and is refused).
func (s *Store) Sign(sl piv.Slot, challenge, pin []byte) ([]byte, error) {
	alg, ok := s.Key(sl)
	if !ok {
		return nil, fmt.Errorf("vscpiv: no key in slot %s: %w", sl, hwerr.ErrNotFound)
	}
	req := device.SignRequest{Key: sl.String(), PIN: unpad(pin)}
	defer clear(req.PIN)
	switch alg {
	case piv.KeyAlgP256:
		req.Algorithm, req.Digest = device.ECDSASHA256, challenge
	case piv.KeyAlgP384:
		req.Algorithm, req.Digest = device.ECDSASHA384, challenge
	default:
		digest, ok := emsa.ParsePKCS1v15SHA256(challenge)
		if !ok {
			return nil, fmt.Errorf("vscpiv: RSA input is not a PKCS#1 v1.5 SHA-256 block: %w", hwerr.ErrNotSupported)
		}
		req.Algorithm, req.Digest = device.RSAPKCS1v15SHA256, digest
	}
	c, cancel := ctx()
	defer cancel()
	sig, err := s.card.Sign(c, req)
	var wrong *hwerr.PINIncorrect
	if errors.As(err, &wrong) || errors.Is(err, hwerr.ErrPINBlocked) {
		// The PIN verified in this card session no longer opens the key
		// (changed through the API since): the TPM counted a try.
		s.attempt("PIN", err)
	}
	return sig, err
}

// unpad strips the FF padding of a PIN or PUK as the card receives it; the
// result is a copy the caller clears.
func unpad(padded []byte) []byte {
	return bytes.Clone(bytes.TrimRight(padded, "\xFF"))
}

// VerifyPIN implements pivcard.Store: the virtual card's own check, on its
// TPM counter.
func (s *Store) VerifyPIN(pin []byte) uint16 {
	p := unpad(pin)
	defer clear(p)
	c, cancel := ctx()
	defer cancel()
	return s.attempt("PIN", s.card.VerifyPIN(c, p))
}

// PINTriesLeft implements pivcard.Store with the card's counter.
func (s *Store) PINTriesLeft() int {
	c, cancel := ctx()
	defer cancel()
	st, err := s.card.PINState(c)
	switch {
	case err != nil, st.Blocked:
		return 0
	}
	if n, ok := st.RetriesLeft.Left(); ok {
		return n
	}
	return 15
}

// ChangeReference implements pivcard.Store for the PIN; the PUK is IT's and
// is not changed through the card.
func (s *Store) ChangeReference(ref byte, oldValue, newValue []byte) uint16 {
	if ref != piv.KeyRefPIN {
		return apdu.SWFuncNotSupported
	}
	o, n := unpad(oldValue), unpad(newValue)
	defer clear(o)
	defer clear(n)
	c, cancel := ctx()
	defer cancel()
	return s.attempt("PIN", s.card.ChangePIN(c, o, n))
}

// ResetRetryCounter implements pivcard.Store: the card's unblock with its
// PUK.
func (s *Store) ResetRetryCounter(puk, newPIN []byte) uint16 {
	k, n := unpad(puk), unpad(newPIN)
	defer clear(k)
	defer clear(n)
	c, cancel := ctx()
	defer cancel()
	return s.attempt("PUK", s.card.UnblockPIN(c, k, n))
}

// attempt reports a PIN or PUK attempt and answers its status word.
func (s *Store) attempt(what string, err error) uint16 {
	if s.onAttempt != nil {
		s.onAttempt(Attempt{What: what, Err: err})
	}
	return statusOf(err)
}

// statusOf maps a card operation's error to the status word a PIV card
// answers (SP 800-73-4 Part 2 §3.2.1).
func statusOf(err error) uint16 {
	var wrong *hwerr.PINIncorrect
	switch {
	case err == nil:
		return apdu.SWSuccess
	case errors.As(err, &wrong) && wrong.RetriesLeft.Known():
		n, _ := wrong.RetriesLeft.Left()
		return apdu.SWVerifyFail | uint16(min(n, 15))
	case errors.Is(err, hwerr.ErrPINBlocked), errors.Is(err, hwerr.ErrPUKBlocked):
		return apdu.SWAuthBlocked
	case errors.Is(err, hwerr.ErrPINPolicy), errors.Is(err, hwerr.ErrInvalidInput):
		return apdu.SWIncorrectData
	}
	return apdu.SWUnknown
}
