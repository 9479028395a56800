package tpm

import (
	"crypto/x509"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
)

// The attestation key is the restricted ECDSA P-256 SHA-256 primary of
// the endorsement hierarchy (attestationKeyTemplate): the same key every
// time on one TPM, so IT can record it once per device (trusting it is
// IT's enrollment step, e.g. the endorsement key exchange of
// AttestationRequest). Its statements are TPM2_Certify (TPM 2.0 Part 3
// §18.2) over a card's signing key; package attest verifies them.

// attestLocked certifies the card's key with the attestation key, with
// nonce as qualifying data, and returns the statement and the attestation
// key's public area (TPMT_PUBLIC, whose name binds it in the endorsement
// key exchange). The key's ADMIN role (which TPM2_Certify needs) takes its
// empty authValue: certifying reveals nothing and the key signs only
// through its policy. It holds at most two objects loaded (key and
// attestation key).
func (t *TPM) attestLocked(c *Card, nonce []byte) (*device.KeyAttestation, []byte, error) {
	t.dropKeysLocked()
	key, err := t.loadLocked(c.KeyPublic, c.KeyPrivate)
	if err != nil {
		return nil, nil, err
	}
	defer t.flushLocked(key.Handle)
	ak, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHEndorsement,
		InPublic:      tpm2.New2B(attestationKeyTemplate()),
	}.Execute(t.tr)
	if err != nil {
		return nil, nil, fmt.Errorf("create attestation key: %w", classify(err))
	}
	defer t.flushLocked(ak.ObjectHandle)
	rsp, err := tpm2.Certify{
		ObjectHandle:   tpm2.AuthHandle{Handle: key.Handle, Name: key.Name, Auth: tpm2.PasswordAuth(nil)},
		SignHandle:     tpm2.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
	}.Execute(t.tr)
	if err != nil {
		return nil, nil, fmt.Errorf("certify key: %w", classify(err))
	}
	sig, err := encodeSignature(&rsp.Signature)
	if err != nil {
		return nil, nil, err
	}
	akPub, err := publicKey(ak.OutPublic.Bytes())
	if err != nil {
		return nil, nil, err
	}
	akDER, err := x509.MarshalPKIXPublicKey(akPub)
	if err != nil {
		return nil, nil, fmt.Errorf("encode attestation key: %w: %v", hwerr.ErrProtocol, err)
	}
	return &device.KeyAttestation{AKPublic: akDER, KeyPublic: c.KeyPublic,
		CertifyInfo: rsp.CertifyInfo.Bytes(), Signature: sig, Nonce: nonce}, ak.OutPublic.Bytes(), nil
}
