package attest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/device"
)

// seedPublic is a marshalled TPMT_PUBLIC of a P-256 signing key built in
// Go, with the attributes of a card key (fixedTPM, fixedParent,
// sensitiveDataOrigin).
func seedPublic(f *testing.F) ([]byte, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	pub := tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
			UserWithAuth: true, SignEncrypt: true},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme:    tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull},
			CurveID:   tpm2.TPMECCNistP256,
			KDF:       tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: key.X.FillBytes(make([]byte, 32))},
			Y: tpm2.TPM2BECCParameter{Buffer: key.Y.FillBytes(make([]byte, 32))},
		}),
	}
	return tpm2.Marshal(pub), key
}

// FuzzVerifyAttestation feeds attestation statements to the TPMS_ATTEST and
// TPMT_PUBLIC parsers behind Verify: it must never panic, and what passes
// is a public area with the certified name and the attributes of a key
// bound to its TPM.
func FuzzVerifyAttestation(f *testing.F) {
	keyPub, key := seedPublic(f)
	pub, _ := tpm2.Unmarshal[tpm2.TPMTPublic](keyPub)
	name, _ := tpm2.ObjectName(pub)
	info := tpm2.Marshal(tpm2.TPMSAttest{
		Magic:     tpm2.TPMGeneratedValue,
		Type:      tpm2.TPMSTAttestCertify,
		ExtraData: tpm2.TPM2BData{Buffer: []byte("nonce")},
		Attested:  tpm2.NewTPMUAttest(tpm2.TPMSTAttestCertify, &tpm2.TPMSCertifyInfo{Name: *name}),
	})
	n, err := certifiedName(info, []byte("nonce"))
	if err != nil {
		f.Fatalf("seed statement: %v", err)
	}
	if got, err := certifiedKey(keyPub, n); err != nil || !key.PublicKey.Equal(got) {
		f.Fatalf("seed key: %v, %v", got, err)
	}
	f.Add(info, keyPub, []byte("nonce"))
	f.Add(info[:20], keyPub[:10], []byte{})
	f.Fuzz(func(t *testing.T, info, keyPublic, nonce []byte) {
		n, err := certifiedName(info, nonce)
		if err != nil {
			return
		}
		if _, err := certifiedKey(keyPublic, n); err != nil {
			return
		}
		pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](keyPublic)
		if err != nil {
			t.Fatalf("accepted a public area that does not parse: %v", err)
		}
		a := pub.ObjectAttributes
		got, err := tpm2.ObjectName(pub)
		if err != nil || !bytes.Equal(got.Buffer, n) || !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
			t.Fatalf("accepted %x for the name %x", keyPublic, n)
		}
	})
}

// FuzzAttestationRequest feeds attestation requests (from a device the
// verifier does not trust yet) to VerifyRequest: it must never panic, and
// with no EK CA at all nothing verifies.
func FuzzAttestationRequest(f *testing.F) {
	keyPub, _ := seedPublic(f)
	f.Add([]byte{0x30, 0x82, 0x01, 0x00}, keyPub, keyPub, keyPub, []byte{0xff, 0x54, 0x43, 0x47}, []byte{0x30, 0x06})
	f.Fuzz(func(t *testing.T, cert, ekPub, akPub, keyPublic, info, sig []byte) {
		req := &device.AttestationRequest{EKCertificate: cert, EKPublic: ekPub, AKPublic: akPub,
			KeyPublic: keyPublic, CertifyInfo: info, Signature: sig}
		if _, _, _, err := VerifyRequest(req, nil); err == nil {
			t.Fatal("a request verified without any EK CA")
		}
	})
}
