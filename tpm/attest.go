package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// ErrBadAttestation is what VerifyAttestation wraps when a statement does
// not prove what it should.
var ErrBadAttestation = errors.New("key attestation does not verify")

// Attestation is a TPM2_Certify statement (TPM 2.0 Part 3 §18.2) by this
// TPM's attestation key over a card's signing key. The attestation key is
// the restricted ECDSA P-256 SHA-256 primary of the endorsement hierarchy
// (attestationKeyTemplate): the same key every time on one TPM, so IT can
// record it once per device (trusting it is IT's enrollment step, e.g. by
// TPM2_ActivateCredential against the EK certificate).
type Attestation struct {
	// AKPublic is the attestation key's public key, PKIX DER.
	AKPublic []byte `json:"ak_public"`
	// AKPublicArea is the attestation key's public area (TPMT_PUBLIC),
	// whose name binds it in the EK exchange (AttestationRequest).
	AKPublicArea []byte `json:"ak_public_area,omitempty"`
	// KeyPublic is the certified key's public area (TPMT_PUBLIC).
	KeyPublic []byte `json:"key_public"`
	// CertifyInfo is the signed TPMS_ATTEST.
	CertifyInfo []byte `json:"certify_info"`
	// Signature is the ECDSA signature (ASN.1 DER) over SHA-256(CertifyInfo).
	Signature []byte `json:"signature"`
}

// attestLocked certifies the card's new key with the attestation key.
// The key's ADMIN role (which TPM2_Certify needs) takes its empty
// authValue: certifying reveals nothing and the key signs only through its
// policy. It holds at most two objects loaded (key and attestation key).
func (t *TPM) attestLocked(c *Card, nonce []byte) (*Attestation, error) {
	t.dropKeyLocked()
	key, err := t.loadLocked(c.KeyPublic, c.KeyPrivate)
	if err != nil {
		return nil, err
	}
	defer t.flushLocked(key.Handle)
	ak, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHEndorsement,
		InPublic:      tpm2.New2B(attestationKeyTemplate()),
	}.Execute(t.tr)
	if err != nil {
		return nil, fmt.Errorf("create attestation key: %w", classify(err))
	}
	defer t.flushLocked(ak.ObjectHandle)
	rsp, err := tpm2.Certify{
		ObjectHandle:   tpm2.AuthHandle{Handle: key.Handle, Name: key.Name, Auth: tpm2.PasswordAuth(nil)},
		SignHandle:     tpm2.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
	}.Execute(t.tr)
	if err != nil {
		return nil, fmt.Errorf("certify key: %w", classify(err))
	}
	sig, err := encodeSignature(&rsp.Signature)
	if err != nil {
		return nil, err
	}
	akPub, err := publicKey(ak.OutPublic.Bytes())
	if err != nil {
		return nil, err
	}
	akDER, err := x509.MarshalPKIXPublicKey(akPub)
	if err != nil {
		return nil, fmt.Errorf("encode attestation key: %w: %v", hwerr.ErrProtocol, err)
	}
	return &Attestation{AKPublic: akDER, AKPublicArea: ak.OutPublic.Bytes(), KeyPublic: c.KeyPublic,
		CertifyInfo: rsp.CertifyInfo.Bytes(), Signature: sig}, nil
}

// VerifyAttestation checks, in Go alone, that att proves that cardKey is a
// key that cannot leave the TPM that holds the attestation key att.AKPublic:
// the signature over CertifyInfo verifies with AKPublic; CertifyInfo is a
// TPM_GENERATED TPM_ST_ATTEST_CERTIFY statement with nonce as qualifying
// data, naming the object whose public area is KeyPublic (name = nameAlg ||
// H(TPMT_PUBLIC), TPM 2.0 Part 1 §16); that public area holds cardKey and
// has fixedTPM, fixedParent and sensitiveDataOrigin set. Failures wrap
// ErrBadAttestation. Whether AKPublic belongs to a trusted TPM is the
// caller's to know.
func VerifyAttestation(att *Attestation, cardKey crypto.PublicKey, nonce []byte) error {
	if err := verifyAttestSignature(att); err != nil {
		return err
	}
	name, err := certifiedName(att.CertifyInfo, nonce)
	if err != nil {
		return err
	}
	return checkCertifiedKey(att.KeyPublic, name, cardKey)
}

func verifyAttestSignature(att *Attestation) error {
	pub, err := x509.ParsePKIXPublicKey(att.AKPublic)
	if err != nil {
		return fmt.Errorf("%w: attestation key: %v", ErrBadAttestation, err)
	}
	ak, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: attestation key is %T, want ECDSA", ErrBadAttestation, pub)
	}
	sum := sha256.Sum256(att.CertifyInfo)
	if !ecdsa.VerifyASN1(ak, sum[:], att.Signature) {
		return fmt.Errorf("%w: signature", ErrBadAttestation)
	}
	return nil
}

// certifiedName parses a TPMS_ATTEST (TPM 2.0 Part 2 §10.12.12), checks
// its magic, type and qualifying data and returns the certified name.
func certifiedName(info, nonce []byte) ([]byte, error) {
	attest, err := tpm2.Unmarshal[tpm2.TPMSAttest](info)
	if err != nil {
		return nil, fmt.Errorf("%w: parse TPMS_ATTEST: %v", ErrBadAttestation, err)
	}
	if attest.Magic != tpm2.TPMGeneratedValue || attest.Type != tpm2.TPMSTAttestCertify {
		return nil, fmt.Errorf("%w: not a TPM-generated certify statement", ErrBadAttestation)
	}
	if !bytes.Equal(attest.ExtraData.Buffer, nonce) {
		return nil, fmt.Errorf("%w: qualifying data is not the nonce", ErrBadAttestation)
	}
	certify, err := attest.Attested.Certify()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadAttestation, err)
	}
	return certify.Name.Buffer, nil
}

// checkCertifiedKey checks that keyPublic (TPMT_PUBLIC) has the certified
// name, holds cardKey and is a non-exportable key generated in the TPM.
func checkCertifiedKey(keyPublic, name []byte, cardKey crypto.PublicKey) error {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](keyPublic)
	if err != nil {
		return fmt.Errorf("%w: parse key public area: %v", ErrBadAttestation, err)
	}
	computed, err := tpm2.ObjectName(pub)
	if err != nil {
		return fmt.Errorf("%w: key name: %v", ErrBadAttestation, err)
	}
	if !bytes.Equal(computed.Buffer, name) {
		return fmt.Errorf("%w: certified name is not the key's", ErrBadAttestation)
	}
	a := pub.ObjectAttributes
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
		return fmt.Errorf("%w: key is not generated in and bound to the TPM", ErrBadAttestation)
	}
	key, err := tpm2.Pub(*pub)
	if err != nil {
		return fmt.Errorf("%w: key: %v", ErrBadAttestation, err)
	}
	eq, ok := key.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(cardKey) {
		return fmt.Errorf("%w: certified key is not the card's", ErrBadAttestation)
	}
	return nil
}
