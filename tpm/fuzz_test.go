package tpm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// seedPublic is a marshalled TPMT_PUBLIC of a P-256 signing key built in Go.
func seedPublic(f *testing.F) ([]byte, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	pub, err := signingKeyTemplate(AlgECCP256, nil)
	if err != nil {
		f.Fatal(err)
	}
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: key.X.FillBytes(make([]byte, 32))},
		Y: tpm2.TPM2BECCParameter{Buffer: key.Y.FillBytes(make([]byte, 32))},
	})
	return tpm2.Marshal(pub), key
}

// FuzzPublicKey feeds card KeyPublic blobs (from the daemon's store) to the
// TPMT_PUBLIC parser.
func FuzzPublicKey(f *testing.F) {
	seed, _ := seedPublic(f)
	f.Add(seed)
	rsaTmpl, _ := signingKeyTemplate(AlgRSA2048, nil)
	f.Add(tpm2.Marshal(rsaTmpl))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = publicKey(b)
	})
}

// FuzzImportCertificate feeds certificate DER to ImportCertificate: it must
// not panic and must store only a certificate for the card's key.
func FuzzImportCertificate(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1e9, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		f.Fatal(err)
	}
	pkix, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	f.Add(der)
	f.Add(der[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &Card{PublicKey: pkix}
		if ImportCertificate(c, b) != nil {
			return
		}
		cert, err := x509.ParseCertificate(c.Certificate)
		if err != nil || !key.PublicKey.Equal(cert.PublicKey) {
			t.Fatal("stored a certificate that does not match the card")
		}
	})
}

// FuzzAdminResponse feeds admin-key responses (from the API) to the
// signature parser: it must not panic, and what it accepts is a P-256
// signature of two 32-byte halves.
func FuzzAdminResponse(f *testing.F) {
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		sig, err := ecdsaSignature(der)
		if err != nil {
			return
		}
		ecc, err := sig.Signature.ECDSA()
		if err != nil || len(ecc.SignatureR.Buffer) != 32 || len(ecc.SignatureS.Buffer) != 32 {
			t.Fatalf("accepted %x as %+v, %v", der, ecc, err)
		}
	})
}

// FuzzChangeAuthResponse feeds TPM2_NV_ChangeAuth response bodies to
// their parser: it must not panic.
func FuzzChangeAuthResponse(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, rest []byte) {
		sess := []tpm2.Session{&heldPolicy{}, &heldPolicy{}}
		_ = validateChangeAuth(rest, nil, sess)
	})
}

// FuzzParseResponse feeds TPM responses to the signing path's parsers
// (parseResponse, then parseSignature on its parameters): they must never
// panic, and what they accept must lie within the response.
func FuzzParseResponse(f *testing.F) {
	sig := tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA,
		&tpm2.TPMSSignatureECC{Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: []byte{1}}, SignatureS: tpm2.TPM2BECCParameter{Buffer: []byte{2}}})})
	rsp := be.AppendUint16(nil, uint16(tpm2.TPMSTSessions))
	rsp = be.AppendUint32(rsp, uint32(10+4+len(sig)+2+16+1+2))
	rsp = be.AppendUint32(rsp, 0)
	rsp = be.AppendUint32(rsp, uint32(len(sig)))
	rsp = append(rsp, sig...)
	rsp = append2B(rsp, make([]byte, 16))
	rsp = append(rsp, attrContinueSession)
	rsp = append2B(rsp, nil)
	if _, _, err := parseResponse(rsp); err != nil {
		f.Fatalf("seed response: %v", err)
	}
	f.Add(rsp)
	f.Add([]byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x8e})
	f.Fuzz(func(t *testing.T, b []byte) {
		params, auth, err := parseResponse(b)
		if err != nil {
			return
		}
		if len(params)+len(auth.nonce)+len(auth.hmac)+19 != len(b) {
			t.Fatalf("parsed %d+%d+%d bytes of a %d-byte response", len(params), len(auth.nonce), len(auth.hmac), len(b))
		}
		for _, sc := range []sigScheme{{tpm2.TPMAlgECDSA, tpm2.TPMAlgSHA256}, {tpm2.TPMAlgRSASSA, tpm2.TPMAlgSHA256}} {
			_, _ = parseSignature(params, sc)
		}
	})
}
