// Package attest is the verifier's side of a virtual smart card's key
// attestations: IT checks, in Go alone and away from the device, that a
// card's key lives in a TPM (TPM 2.0 Part 3 §18.2 TPM2_Certify, and the
// endorsement key exchange of Part 1 §24). It opens no TPM and needs no
// cgo, so that hwauthctl verifies without linking the engine; package tpm
// makes the statements on the device.
package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/device"
)

// ErrNotProven is what the checks wrap when a statement does not prove
// what it should.
var ErrNotProven = errors.New("key attestation does not verify")

// Verify checks that att proves that cardKey is a key that cannot leave
// the TPM that holds the attestation key att.AKPublic: the signature over
// CertifyInfo verifies with AKPublic; CertifyInfo is a TPM_GENERATED
// TPM_ST_ATTEST_CERTIFY statement with nonce as qualifying data (the
// verifier's own nonce: att.Nonce is not read), naming the object whose
// public area is KeyPublic (name = nameAlg || H(TPMT_PUBLIC), TPM 2.0 Part
// 1 §16); that public area holds cardKey and has fixedTPM, fixedParent and
// sensitiveDataOrigin set. Failures wrap ErrNotProven. Whether AKPublic
// belongs to a trusted TPM is the caller's to know (VerifyRequest).
func Verify(att *device.KeyAttestation, cardKey crypto.PublicKey, nonce []byte) error {
	pub, err := x509.ParsePKIXPublicKey(att.AKPublic)
	if err != nil {
		return fmt.Errorf("%w: attestation key: %v", ErrNotProven, err)
	}
	if err := verifySignature(pub, att.CertifyInfo, att.Signature); err != nil {
		return err
	}
	name, err := certifiedName(att.CertifyInfo, nonce)
	if err != nil {
		return err
	}
	key, err := certifiedKey(att.KeyPublic, name)
	if err != nil {
		return err
	}
	if eq, ok := key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(cardKey) {
		return fmt.Errorf("%w: certified key is not the card's", ErrNotProven)
	}
	return nil
}

// verifySignature checks the attestation key's ECDSA signature (ASN.1 DER)
// over SHA-256(info).
func verifySignature(ak crypto.PublicKey, info, sig []byte) error {
	key, ok := ak.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: attestation key is %T, want ECDSA", ErrNotProven, ak)
	}
	sum := sha256.Sum256(info)
	if !ecdsa.VerifyASN1(key, sum[:], sig) {
		return fmt.Errorf("%w: signature", ErrNotProven)
	}
	return nil
}

// certifiedName parses a TPMS_ATTEST (TPM 2.0 Part 2 §10.12.12), checks
// its magic, type and qualifying data and returns the certified name.
func certifiedName(info, nonce []byte) ([]byte, error) {
	attest, err := tpm2.Unmarshal[tpm2.TPMSAttest](info)
	if err != nil {
		return nil, fmt.Errorf("%w: parse TPMS_ATTEST: %v", ErrNotProven, err)
	}
	if attest.Magic != tpm2.TPMGeneratedValue || attest.Type != tpm2.TPMSTAttestCertify {
		return nil, fmt.Errorf("%w: not a TPM-generated certify statement", ErrNotProven)
	}
	if !bytes.Equal(attest.ExtraData.Buffer, nonce) {
		return nil, fmt.Errorf("%w: qualifying data is not the nonce", ErrNotProven)
	}
	certify, err := attest.Attested.Certify()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotProven, err)
	}
	return certify.Name.Buffer, nil
}

// certifiedKey checks that keyPublic (TPMT_PUBLIC) has the certified name
// and is a non-exportable key generated in the TPM, and returns its key.
func certifiedKey(keyPublic, name []byte) (crypto.PublicKey, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](keyPublic)
	if err != nil {
		return nil, fmt.Errorf("%w: parse key public area: %v", ErrNotProven, err)
	}
	computed, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: key name: %v", ErrNotProven, err)
	}
	if !bytes.Equal(computed.Buffer, name) {
		return nil, fmt.Errorf("%w: certified name is not the key's", ErrNotProven)
	}
	a := pub.ObjectAttributes
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
		return nil, fmt.Errorf("%w: key is not generated in and bound to the TPM", ErrNotProven)
	}
	key, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %v", ErrNotProven, err)
	}
	return key, nil
}
