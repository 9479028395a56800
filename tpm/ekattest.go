package tpm

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
)

// ekCertIndex is the NV index of the RSA 2048 endorsement key certificate
// (TCG EK Credential Profile 2.0 §2.2.1.4), whose key is the primary the
// TCG template L-1 (tpm2.RSAEKTemplate) gives in the endorsement
// hierarchy.
const ekCertIndex = tpm2.TPMHandle(0x01C00002)

// nvReadChunk is how much one TPM2_NV_Read asks for; TPMs answer at least
// 512 bytes (TPM_PT_NV_BUFFER_MAX is larger on most).
const nvReadChunk = 512

// AttestationRequest builds the first step of the endorsement key
// exchange for card, which proves to IT that the card's key lives in this
// TPM: it reads the TPM's endorsement key certificate (issued by the TPM
// maker's CA) from NV, re-creates the EK and the attestation key, and
// certifies the card key with the attestation key. The verifier
// (attest.VerifyRequest) checks it and answers with a credential only
// this TPM can open for that attestation key; ActivateAttestation opens it
// and the verifier checks the answer (attest.CheckAnswer). Only then is the
// attestation key, and so the card key it certified, known to be in a TPM
// the CA vouches for. A TPM without an EK certificate is
// hwerr.ErrNotSupported.
func (t *TPM) AttestationRequest(ctx context.Context, card *Card) (*device.AttestationRequest, error) {
	if err := t.lock(ctx); err != nil {
		return nil, err
	}
	defer t.unlock()
	if err := t.checkCardLocked(card); err != nil {
		return nil, err
	}
	cert, err := t.readNVLocked(ekCertIndex)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return nil, fmt.Errorf("this TPM has no endorsement key certificate at %#x: %w", uint32(ekCertIndex), hwerr.ErrNotSupported)
	}
	if err != nil {
		return nil, fmt.Errorf("read endorsement key certificate: %w", classify(err))
	}
	ek, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(tpm2.RSAEKTemplate)}.Execute(t.tr)
	if err != nil {
		return nil, fmt.Errorf("create endorsement key: %w", classify(err))
	}
	t.flushLocked(ek.ObjectHandle)
	att, akArea, err := t.attestLocked(card, nil)
	if err != nil {
		return nil, err
	}
	return &device.AttestationRequest{
		EKCertificate: cert,
		EKPublic:      ek.OutPublic.Bytes(),
		AKPublic:      akArea,
		KeyPublic:     att.KeyPublic,
		CertifyInfo:   att.CertifyInfo,
		Signature:     att.Signature,
	}, nil
}

// ActivateAttestation opens a verifier's challenge with the TPM's EK and
// attestation key (TPM 2.0 Part 3 §12.5 TPM2_ActivateCredential; the EK's
// policy is PolicySecret on the endorsement hierarchy) and returns the
// secret in it: the answer for the verifier. A challenge made for another
// TPM or another attestation key does not open (hwerr.ErrInvalidInput).
func (t *TPM) ActivateAttestation(ctx context.Context, ch device.AttestationChallenge) ([]byte, error) {
	if err := t.lock(ctx); err != nil {
		return nil, err
	}
	defer t.unlock()
	t.dropKeysLocked()
	ek, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(tpm2.RSAEKTemplate)}.Execute(t.tr)
	if err != nil {
		return nil, fmt.Errorf("create endorsement key: %w", classify(err))
	}
	defer t.flushLocked(ek.ObjectHandle)
	ak, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(attestationKeyTemplate())}.Execute(t.tr)
	if err != nil {
		return nil, fmt.Errorf("create attestation key: %w", classify(err))
	}
	defer t.flushLocked(ak.ObjectHandle)
	var secret []byte
	err = t.withPolicyLocked(func(s tpm2.Session) error {
		_, err := tpm2.PolicySecret{
			AuthHandle:    tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
			PolicySession: s.Handle(),
			NonceTPM:      s.NonceTPM(),
		}.Execute(t.tr)
		return err
	}, func(s tpm2.Session) error {
		rsp, err := tpm2.ActivateCredential{
			ActivateHandle: tpm2.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
			KeyHandle:      tpm2.AuthHandle{Handle: ek.ObjectHandle, Name: ek.Name, Auth: s},
			CredentialBlob: tpm2.TPM2BIDObject{Buffer: ch.CredentialBlob},
			Secret:         tpm2.TPM2BEncryptedSecret{Buffer: ch.EncryptedSecret},
		}.Execute(t.tr)
		if err == nil {
			secret = rsp.CertInfo.Buffer
		}
		return err
	})
	var rc tpm2.TPMRC
	if err != nil && errors.As(err, &rc) && !rc.IsWarning() {
		return nil, fmt.Errorf("the challenge does not open with this TPM's keys (%v): %w", err, hwerr.ErrInvalidInput)
	}
	if err != nil {
		return nil, fmt.Errorf("activate credential: %w", classify(err))
	}
	return secret, nil
}

// readNVLocked reads a whole NV index with its own (empty) authorization,
// in chunks.
func (t *TPM) readNVLocked(h tpm2.TPMHandle) ([]byte, error) {
	pub, err := tpm2.NVReadPublic{NVIndex: h}.Execute(t.tr)
	if err != nil {
		return nil, err
	}
	info, err := pub.NVPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", hwerr.ErrProtocol, err)
	}
	idx := tpm2.NamedHandle{Handle: h, Name: pub.NVName}
	var out []byte
	for off := 0; off < int(info.DataSize); off += nvReadChunk {
		rsp, err := tpm2.NVRead{
			AuthHandle: tpm2.AuthHandle{Handle: h, Name: pub.NVName, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    idx,
			Size:       uint16(min(nvReadChunk, int(info.DataSize)-off)),
			Offset:     uint16(off),
		}.Execute(t.tr)
		if err != nil {
			return nil, err
		}
		out = append(out, rsp.Data.Buffer...)
	}
	return out, nil
}
