package attest

import (
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/device"
)

// oidSubjectAltName is the SAN extension, which EK certificates carry
// critical with only a directoryName (TPM manufacturer, model, version;
// TCG EK Credential Profile §3.2.9) that Go's x509 does not interpret.
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// attestationSecretSize is the size of the verifier's secret in a
// challenge (at most a SHA-256 digest, the size of the EK's name hash).
const attestationSecretSize = 32

// VerifyRequest is the verifier's first step of the endorsement key
// exchange (device.AttestationRequest, made by the device's TPM). It
// checks that req's EK certificate chains to one of ekCAs (the TPM maker's
// CA, root or intermediate), that the EK public area is the certificate's
// key and a restricted decryption key that never leaves its TPM, that the
// attestation key is a restricted signing key that never leaves its TPM,
// and that it certified req.KeyPublic (Verify's checks, without a nonce).
// It returns the certified card key, and a challenge for the device with
// the secret it hides (TPM2_MakeCredential), which the verifier keeps for
// CheckAnswer: only the TPM holding that EK can open the challenge, and
// only for that attestation key. Failures wrap ErrNotProven.
func VerifyRequest(req *device.AttestationRequest, ekCAs []*x509.Certificate) (crypto.PublicKey, *device.AttestationChallenge, []byte, error) {
	ekPub, err := verifyEK(req, ekCAs)
	if err != nil {
		return nil, nil, nil, err
	}
	akPub, err := tpm2.Unmarshal[tpm2.TPMTPublic](req.AKPublic)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: parse attestation key: %v", ErrNotProven, err)
	}
	a := akPub.ObjectAttributes
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || !a.Restricted || !a.SignEncrypt || a.Decrypt {
		return nil, nil, nil, fmt.Errorf("%w: the attestation key is not a restricted signing key bound to its TPM", ErrNotProven)
	}
	ak, err := tpm2.Pub(*akPub)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: attestation key: %v", ErrNotProven, err)
	}
	if err := verifySignature(ak, req.CertifyInfo, req.Signature); err != nil {
		return nil, nil, nil, err
	}
	name, err := certifiedName(req.CertifyInfo, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	cardKey, err := certifiedKey(req.KeyPublic, name)
	if err != nil {
		return nil, nil, nil, err
	}
	akName, err := tpm2.ObjectName(akPub)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: attestation key name: %v", ErrNotProven, err)
	}
	enc, err := tpm2.ImportEncapsulationKey(ekPub)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: endorsement key: %v", ErrNotProven, err)
	}
	secret := make([]byte, attestationSecretSize)
	_, _ = rand.Read(secret)
	blob, encSecret, err := tpm2.CreateCredential(rand.Reader, enc, akName.Buffer, secret)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("make credential: %w", err)
	}
	return cardKey, &device.AttestationChallenge{CredentialBlob: blob, EncryptedSecret: encSecret}, secret, nil
}

// verifyEK checks the EK certificate's chain and that the EK public area
// is its key and an endorsement-style key.
func verifyEK(req *device.AttestationRequest, ekCAs []*x509.Certificate) (*tpm2.TPMTPublic, error) {
	cert, err := x509.ParseCertificate(req.EKCertificate)
	if err != nil {
		return nil, fmt.Errorf("%w: parse EK certificate: %v", ErrNotProven, err)
	}
	cert.UnhandledCriticalExtensions = slices.DeleteFunc(cert.UnhandledCriticalExtensions,
		func(o asn1.ObjectIdentifier) bool { return o.Equal(oidSubjectAltName) })
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range ekCAs {
		if c.IsCA && string(c.RawIssuer) == string(c.RawSubject) {
			roots.AddCert(c)
		} else {
			inter.AddCert(c)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("%w: the EK certificate does not chain to the EK CA: %v", ErrNotProven, err)
	}
	ekPub, err := tpm2.Unmarshal[tpm2.TPMTPublic](req.EKPublic)
	if err != nil {
		return nil, fmt.Errorf("%w: parse EK public area: %v", ErrNotProven, err)
	}
	a := ekPub.ObjectAttributes
	if !a.FixedTPM || !a.FixedParent || !a.Restricted || !a.Decrypt || a.SignEncrypt {
		return nil, fmt.Errorf("%w: the EK is not a restricted decryption key bound to its TPM", ErrNotProven)
	}
	ek, err := tpm2.Pub(*ekPub)
	if err != nil {
		return nil, fmt.Errorf("%w: EK: %v", ErrNotProven, err)
	}
	eq, ok := ek.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: the EK public area is not the certificate's key", ErrNotProven)
	}
	return ekPub, nil
}

// CheckAnswer is the verifier's last step: answer (what the device's TPM
// found in the challenge, tpm.ActivateAttestation) must be the secret of
// the challenge the verifier made. An answer to another challenge (a
// replay) fails with ErrNotProven.
func CheckAnswer(secret, answer []byte) error {
	if len(secret) != attestationSecretSize || subtle.ConstantTimeCompare(secret, answer) != 1 {
		return fmt.Errorf("%w: the answer is not this challenge's secret", ErrNotProven)
	}
	return nil
}
