package tpm

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

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
// with pin's authorization, in three TPM commands when the key and the PIN
// session are loaded: a policy session start, TPM2_PolicySecret (the PIN
// in the held salted session) and TPM2_Sign, after which the TPM flushes
// the policy session itself. The PIN index's name is not read first:
// the PolicySecret HMAC covers the recorded name, and the failure path
// checks it (secretErrorLocked).
func (t *TPM) signLocked(card *Card, pin, digest []byte, scheme tpm2.TPMTSigScheme) ([]byte, error) {
	if err := t.checkRecord(card); err != nil {
		return nil, err
	}
	key, err := t.cardKeyLocked(card)
	if err != nil {
		return nil, err
	}
	var pinErr error
	policy := tpm2.Policy(tpm2.TPMAlgSHA256, 16, func(_ transport.TPM, h tpm2.TPMISHPolicy, nonce tpm2.TPM2BNonce) error {
		pinErr = t.policySecretOnLocked(tpm2.TPMHandle(h), nonce, card, pinSecret, pin)
		return pinErr
	})
	rsp, err := tpm2.Sign{
		KeyHandle:  tpm2.AuthHandle{Handle: key.Handle, Name: key.Name, Auth: policy},
		Digest:     tpm2.TPM2BDigest{Buffer: digest},
		InScheme:   scheme,
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(t.tr)
	if pinErr != nil {
		t.flushPolicyLocked(policy)
		return nil, pinErr
	}
	if err != nil {
		t.flushPolicyLocked(policy)
		t.dropKeyLocked()
		return nil, fmt.Errorf("sign: %w", classify(err))
	}
	return encodeSignature(&rsp.Signature)
}

// flushPolicyLocked flushes a one-shot policy session whose policy or
// command failed (go-tpm leaves it loaded when its callback fails).
func (t *TPM) flushPolicyLocked(s tpm2.Session) {
	if h := s.Handle(); h != tpm2.TPMRHNull {
		t.flushLocked(h)
	}
}

// signScheme picks the TPMT_SIG_SCHEME for a key of alg, checking that
// digest has the length of opts' hash.
func signScheme(alg string, digest []byte, opts crypto.SignerOpts) (tpm2.TPMTSigScheme, error) {
	if opts == nil {
		return tpm2.TPMTSigScheme{}, fmt.Errorf("sign: no hash given: %w", hwerr.ErrInvalidInput)
	}
	hash := opts.HashFunc()
	var hashAlg tpm2.TPMIAlgHash
	switch hash {
	case crypto.SHA256:
		hashAlg = tpm2.TPMAlgSHA256
	case crypto.SHA384:
		hashAlg = tpm2.TPMAlgSHA384
	case crypto.SHA512:
		hashAlg = tpm2.TPMAlgSHA512
	default:
		return tpm2.TPMTSigScheme{}, fmt.Errorf("sign: hash %v: %w", hash, hwerr.ErrNotSupported)
	}
	if len(digest) != hash.Size() {
		return tpm2.TPMTSigScheme{}, fmt.Errorf("sign: digest is %d bytes, %v needs %d: %w",
			len(digest), hash, hash.Size(), hwerr.ErrInvalidInput)
	}
	pss, isPSS := opts.(*rsa.PSSOptions)
	var alg2 tpm2.TPMAlgID
	switch {
	case alg == AlgRSA2048 && isPSS:
		if pss.SaltLength != rsa.PSSSaltLengthAuto && pss.SaltLength != rsa.PSSSaltLengthEqualsHash {
			return tpm2.TPMTSigScheme{}, fmt.Errorf("sign: PSS salt length %d: %w", pss.SaltLength, hwerr.ErrNotSupported)
		}
		alg2 = tpm2.TPMAlgRSAPSS
	case alg == AlgRSA2048:
		alg2 = tpm2.TPMAlgRSASSA
	case isPSS:
		return tpm2.TPMTSigScheme{}, fmt.Errorf("sign: PSS with an %s key: %w", alg, hwerr.ErrNotSupported)
	default:
		alg2 = tpm2.TPMAlgECDSA
	}
	return tpm2.TPMTSigScheme{
		Scheme:  alg2,
		Details: tpm2.NewTPMUSigScheme(alg2, &tpm2.TPMSSchemeHash{HashAlg: hashAlg}),
	}, nil
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
		return asn1.Marshal(struct{ R, S *big.Int }{
			new(big.Int).SetBytes(ecc.SignatureR.Buffer),
			new(big.Int).SetBytes(ecc.SignatureS.Buffer),
		})
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

// Signer has the TPM check pin once (counted as in VerifyPIN) and
// returns a crypto.Signer for the card's key, for
// x509.CreateCertificateRequest and the like; each Sign call takes the TPM
// lock, uses ctx and authorizes with the PIN again. The signer keeps a
// copy of the PIN in memory until release is called, which zeroes it; the
// signer must not be used after. Signer zeroes pin.
func (t *TPM) Signer(ctx context.Context, card *Card, pin []byte) (crypto.Signer, func(), error) {
	pub, err := publicKey(card.KeyPublic)
	if err != nil {
		clear(pin)
		return nil, nil, err
	}
	kept := slices.Clone(pin)
	if err := t.VerifyPIN(ctx, card, pin); err != nil {
		clear(kept)
		return nil, nil, err
	}
	s := &cardSigner{t: t, ctx: ctx, card: card, pin: kept, pub: pub}
	return s, s.release, nil
}

// cardSigner is the crypto.Signer Signer returns.
type cardSigner struct {
	t    *TPM
	ctx  context.Context
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
	if err := s.t.lock(s.ctx); err != nil {
		return nil, err
	}
	defer s.t.unlock()
	if s.pin == nil {
		return nil, fmt.Errorf("sign: signer released: %w", hwerr.ErrPINRequired)
	}
	return s.t.signLocked(s.card, s.pin, digest, scheme)
}

// release zeroes the PIN; it takes the TPM lock so no Sign is using it.
func (s *cardSigner) release() {
	s.t.sem <- struct{}{}
	clear(s.pin)
	s.pin = nil
	<-s.t.sem
}
