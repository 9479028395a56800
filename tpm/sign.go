package tpm

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Sign has the TPM check pin (counted as in VerifyPIN) and sign digest
// with the card's key (TPM 2.0 Part 3 §20.2 TPM2_Sign, authorized by a
// policy session holding PolicySecret on the card's PIN index). digest is
// the opts.HashFunc() hash (SHA-256, SHA-384 or SHA-512) of the message.
// ECDSA signatures are ASN.1 DER; RSA keys sign PKCS #1 v1.5 (RSASSA), or
// PSS when opts is *rsa.PSSOptions (salt length rsa.PSSSaltLengthAuto or
// rsa.PSSSaltLengthEqualsHash; the TPM chooses it, and rsa.VerifyPSS with
// PSSSaltLengthAuto accepts it). A bad digest or scheme is refused before
// the PIN is tried. Nothing is written to disk: the counter is the TPM's.
// The card's key stays loaded for the next Sign. Sign zeroes pin.
func (t *TPM) Sign(ctx context.Context, card *Card, pin []byte, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	defer clear(pin)
	scheme, err := signScheme(card.Algorithm, digest, opts)
	if err != nil {
		return nil, err
	}
	if err := t.lock(ctx); err != nil {
		return nil, err
	}
	defer t.unlock()
	return t.signLocked(card, pin, digest, scheme)
}

// signLocked loads the card's key (or finds it loaded) and signs digest
// with pin's authorization: with the key, the PIN session and the signing
// session loaded, two TPM commands, TPM2_PolicySecret (the PIN in the held
// salted session) in the held policy session, and TPM2_Sign spending that
// assertion. The PIN index's name is not read first: the PolicySecret
// HMAC covers the recorded name, and the failure path checks it
// (secretErrorLocked). When something held was gone from the TPM (reset,
// or flushed by another program), the TPM refused the command before it
// checked any authorization, and the signature is tried once more with
// what it needs loaded afresh: a wrong PIN is counted once, and a right
// one may be checked twice (when the key was gone at TPM2_Sign, after the
// PolicySecret went through).
func (t *TPM) signLocked(card *Card, pin, digest []byte, scheme sigScheme) ([]byte, error) {
	if err := t.checkRecord(card); err != nil {
		return nil, err
	}
	sig, err := t.signOnceLocked(card, pin, digest, scheme)
	if errors.Is(err, errHeldLost) {
		sig, err = t.signOnceLocked(card, pin, digest, scheme)
	}
	return sig, err
}

// signOnceLocked is signLocked without the second try.
func (t *TPM) signOnceLocked(card *Card, pin, digest []byte, scheme sigScheme) ([]byte, error) {
	key, err := t.cardKeyLocked(card)
	if err != nil {
		return nil, err
	}
	s, err := t.signSessionLocked()
	if err != nil {
		return nil, err
	}
	if err := t.policySecretOnLocked(s.handle, s.nonceTPM, card, pinSecret, pin); err != nil {
		t.dropSignSessionLocked()
		return nil, err
	}
	sig, err := t.sendSignLocked(s, key, digest, scheme)
	if err != nil {
		// The assertion may be unspent: it must not outlive this call.
		t.dropSignSessionLocked()
		if t.heldLostLocked(err) {
			return nil, fmt.Errorf("sign: %w: %v", errHeldLost, err)
		}
		t.dropCardKeyLocked(card)
		return nil, fmt.Errorf("sign: %w", classify(err))
	}
	return sig, nil
}

// signSession is the policy session the engine keeps loaded for
// signatures: no salt, no bind, no PolicyAuthValue, so its authorization
// carries no HMAC (TPM 2.0 Part 1 §19.6.8). Each signature asserts
// PolicySecret with the PIN in it and spends the assertion on TPM2_Sign
// with continueSession, after which the TPM resets the session's policy
// for the next signature, as TPM2_PolicyRestart would. An assertion that
// was not spent (the Sign failed or never went out) is never left behind:
// the session is flushed (dropSignSessionLocked). It is one of the TPM's
// loaded-session slots beside the PIN session; other policy operations
// flush it first (withPolicyLocked).
type signSession struct {
	handle   tpm2.TPMHandle
	nonceTPM []byte
}

// signSessionLocked returns the held signing session, starting it when
// there is none.
func (t *TPM) signSessionLocked() (*signSession, error) {
	if t.sign != nil {
		return t.sign, nil
	}
	h, nonce, err := t.startPolicySessionLocked()
	if err != nil {
		return nil, fmt.Errorf("start signing session: %w", err)
	}
	t.sign = &signSession{handle: h, nonceTPM: nonce}
	return t.sign, nil
}

// startPolicySessionLocked starts a policy session without salt or bind
// (TPM2_StartAuthSession, SHA-256) and returns its handle and first
// nonceTPM.
func (t *TPM) startPolicySessionLocked() (tpm2.TPMHandle, []byte, error) {
	rsp, err := tpm2.StartAuthSession{
		TPMKey:      tpm2.TPMRHNull,
		Bind:        tpm2.TPMRHNull,
		NonceCaller: tpm2.TPM2BNonce{Buffer: randomBytes(16)},
		SessionType: tpm2.TPMSEPolicy,
		Symmetric:   tpm2.TPMTSymDef{Algorithm: tpm2.TPMAlgNull},
		AuthHash:    tpm2.TPMAlgSHA256,
	}.Execute(t.tr)
	if err != nil {
		return 0, nil, classify(err)
	}
	return rsp.SessionHandle, rsp.NonceTPM.Buffer, nil
}

// dropSignSessionLocked flushes the held signing session, if any.
func (t *TPM) dropSignSessionLocked() {
	if t.sign != nil {
		t.flushLocked(t.sign.handle)
		t.sign = nil
	}
}

// sendSignLocked sends TPM2_Sign (TPM 2.0 Part 3 §20.2) of digest with key
// in scheme, authorized by the signing session (whose policy the caller
// has just satisfied), and encodes the signature.
func (t *TPM) sendSignLocked(s *signSession, key tpm2.NamedHandle, digest []byte, scheme sigScheme) ([]byte, error) {
	params := make([]byte, 0, 2+len(digest)+4+8)
	params = append2B(params, digest)
	params = be.AppendUint16(params, uint16(scheme.alg))
	params = be.AppendUint16(params, uint16(scheme.hash))
	// validation: a NULL ticket (the digest was not made by the TPM; the
	// key is not restricted, so none is needed).
	params = be.AppendUint16(params, uint16(tpm2.TPMSTHashCheck))
	params = be.AppendUint32(params, uint32(tpm2.TPMRHNull))
	params = append2B(params, nil)
	authz := authCommand{handle: s.handle, nonce: randomBytes(16), attrs: attrContinueSession}
	rparams, rauth, err := t.sendCommand(marshalCommand(tpm2.TPMCCSign, []tpm2.TPMHandle{key.Handle}, authz, params))
	if err != nil {
		return nil, err
	}
	if rauth.attrs&attrContinueSession == 0 {
		t.sign = nil // the TPM ended the session
	} else {
		s.nonceTPM = rauth.nonce
	}
	return parseSignature(rparams, scheme)
}

// sigScheme is a TPMT_SIG_SCHEME: a signature algorithm and its hash.
type sigScheme struct {
	alg, hash tpm2.TPMAlgID
}

// signScheme picks the signature scheme for a key of alg, checking that
// digest has the length of opts' hash.
func signScheme(alg string, digest []byte, opts crypto.SignerOpts) (sigScheme, error) {
	if opts == nil {
		return sigScheme{}, fmt.Errorf("sign: no hash given: %w", hwerr.ErrInvalidInput)
	}
	hash := opts.HashFunc()
	var out sigScheme
	switch hash {
	case crypto.SHA256:
		out.hash = tpm2.TPMAlgSHA256
	case crypto.SHA384:
		out.hash = tpm2.TPMAlgSHA384
	case crypto.SHA512:
		out.hash = tpm2.TPMAlgSHA512
	default:
		return sigScheme{}, fmt.Errorf("sign: hash %v: %w", hash, hwerr.ErrNotSupported)
	}
	if len(digest) != hash.Size() {
		return sigScheme{}, fmt.Errorf("sign: digest is %d bytes, %v needs %d: %w",
			len(digest), hash, hash.Size(), hwerr.ErrInvalidInput)
	}
	pss, isPSS := opts.(*rsa.PSSOptions)
	switch {
	case alg == AlgRSA2048 && isPSS:
		if pss.SaltLength != rsa.PSSSaltLengthAuto && pss.SaltLength != rsa.PSSSaltLengthEqualsHash {
			return sigScheme{}, fmt.Errorf("sign: PSS salt length %d: %w", pss.SaltLength, hwerr.ErrNotSupported)
		}
		out.alg = tpm2.TPMAlgRSAPSS
	case alg == AlgRSA2048:
		out.alg = tpm2.TPMAlgRSASSA
	case isPSS:
		return sigScheme{}, fmt.Errorf("sign: PSS with an %s key: %w", alg, hwerr.ErrNotSupported)
	default:
		out.alg = tpm2.TPMAlgECDSA
	}
	return out, nil
}

// parseSignature reads the TPMT_SIGNATURE of a TPM2_Sign response made in
// scheme (TPM 2.0 Part 2 §11.3.4) into the bytes Go's crypto packages
// verify, as encodeSignature does.
func parseSignature(b []byte, scheme sigScheme) ([]byte, error) {
	r := reader{b: b}
	alg, hash := tpm2.TPMAlgID(r.u16()), tpm2.TPMAlgID(r.u16())
	var sig []byte
	switch {
	case r.bad || alg != scheme.alg || hash != scheme.hash:
	case alg == tpm2.TPMAlgECDSA:
		sr, ss := r.tpm2B(), r.tpm2B()
		if !r.bad && len(r.b) == 0 {
			sig = ecdsaDER(sr, ss)
		}
	default:
		sig = r.tpm2B()
	}
	if sig == nil || r.bad || len(r.b) != 0 {
		return nil, fmt.Errorf("sign: malformed signature from the TPM: %w", hwerr.ErrProtocol)
	}
	return sig, nil
}

// encodeSignature turns a TPMT_SIGNATURE into the bytes Go's crypto
// packages verify: ASN.1 DER for ECDSA (SEC 1 §C.8), the raw signature for
// RSA.
func encodeSignature(sig *tpm2.TPMTSignature) ([]byte, error) {
	switch sig.SigAlg {
	case tpm2.TPMAlgECDSA:
		ecc, err := sig.Signature.ECDSA()
		if err != nil {
			return nil, fmt.Errorf("sign: %w: %v", hwerr.ErrProtocol, err)
		}
		return ecdsaDER(ecc.SignatureR.Buffer, ecc.SignatureS.Buffer), nil
	case tpm2.TPMAlgRSASSA:
		rsaSig, err := sig.Signature.RSASSA()
		if err != nil {
			return nil, fmt.Errorf("sign: %w: %v", hwerr.ErrProtocol, err)
		}
		return rsaSig.Sig.Buffer, nil
	case tpm2.TPMAlgRSAPSS:
		rsaSig, err := sig.Signature.RSAPSS()
		if err != nil {
			return nil, fmt.Errorf("sign: %w: %v", hwerr.ErrProtocol, err)
		}
		return rsaSig.Sig.Buffer, nil
	}
	return nil, fmt.Errorf("sign: signature algorithm %v: %w", sig.SigAlg, hwerr.ErrProtocol)
}

// ecdsaDER encodes an ECDSA signature, r and s as unsigned big-endian
// integers, in ASN.1 DER: SEQUENCE { INTEGER r, INTEGER s }.
func ecdsaDER(r, s []byte) []byte {
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
	if err != nil {
		panic(err) // two non-negative integers always marshal
	}
	return der
}

// Signer has the TPM check pin once (counted as in VerifyPIN) and
// returns a crypto.Signer for the card's key, for
// x509.CreateCertificateRequest and the like. The signer holds the TPM
// (within ctx) until release is called, and each Sign authorizes with the
// PIN again: it keeps a copy of the PIN in memory until release, which
// zeroes it; the signer must not be used after. Signer zeroes pin.
func (t *TPM) Signer(ctx context.Context, card *Card, pin []byte) (crypto.Signer, func(), error) {
	defer clear(pin)
	pub, err := publicKey(card.KeyPublic)
	if err != nil {
		return nil, nil, err
	}
	if err := t.lock(ctx); err != nil {
		return nil, nil, err
	}
	kept := slices.Clone(pin)
	err = t.checkCardLocked(card)
	if err == nil {
		err = t.verifyLocked(card, pin)
	}
	if err != nil {
		clear(kept)
		t.unlock()
		return nil, nil, err
	}
	s := &cardSigner{t: t, card: card, pin: kept, pub: pub}
	return s, s.release, nil
}

// cardSigner is the crypto.Signer Signer returns; it holds the TPM's lock.
type cardSigner struct {
	t    *TPM
	card *Card
	pin  []byte
	pub  crypto.PublicKey
}

// Public implements crypto.Signer.
func (s *cardSigner) Public() crypto.PublicKey { return s.pub }

// Sign implements crypto.Signer; rand is not used (the TPM has its own).
func (s *cardSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	scheme, err := signScheme(s.card.Algorithm, digest, opts)
	if err != nil {
		return nil, err
	}
	if s.pin == nil {
		return nil, fmt.Errorf("sign: signer released: %w", hwerr.ErrPINRequired)
	}
	return s.t.signLocked(s.card, s.pin, digest, scheme)
}

// release zeroes the PIN and gives the TPM back; a second call does
// nothing.
func (s *cardSigner) release() {
	if s.pin == nil {
		return
	}
	clear(s.pin)
	s.pin = nil
	s.t.unlock()
}
