package tpm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/internal/testenv"
)

// testPIN and testPUK meet the default policy (at least 8 characters).
const (
	testPIN  = "12345678"
	testPUK  = "87654321"
	wrongPIN = "00000000"
)

// testCtx returns a context that ends with the test or after a minute.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// openSim opens the engine on a running swtpm, which runs at its
// default dictionary-attack settings: no test raises them.
func openSim(t testing.TB, s *testenv.SWTPMInstance, p Policy) *TPM {
	t.Helper()
	tp, err := Open(testCtx(t), Config{Simulator: s.Addr(), Policy: p})
	if err != nil {
		t.Fatalf("open TPM at %s: %v", s.Addr(), err)
	}
	t.Cleanup(func() { tp.Close() })
	return tp
}

// newSim starts a private swtpm and opens the engine on it.
func newSim(t testing.TB) (*testenv.SWTPMInstance, *TPM) {
	t.Helper()
	s := testenv.SWTPM(t)
	return s, openSim(t, s, Policy{})
}

// property reads one TPM_PT property with TPM2_GetCapability.
func property(t testing.TB, tp *TPM, pt tpm2.TPMPT) uint32 {
	t.Helper()
	if err := tp.lock(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer tp.unlock()
	v, err := tp.propertiesLocked(pt)
	if err != nil {
		t.Fatalf("read %v: %v", pt, err)
	}
	return v[pt]
}

// copyCard is a deep copy of a card record, as a backup of it would be.
func copyCard(t testing.TB, c *Card) *Card {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var cp Card
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatal(err)
	}
	return &cp
}

// createCard creates a card with testPIN and testPUK.
func createCard(t testing.TB, tp *TPM, alg string) *Card {
	t.Helper()
	c, _, err := tp.CreateCard(testCtx(t), CreateOptions{
		Label: "test", PIN: []byte(testPIN), PUK: []byte(testPUK), Algorithm: alg,
	})
	if err != nil {
		t.Fatalf("CreateCard(%s): %v", alg, err)
	}
	return c
}

// cardKey parses the card's PKIX public key.
func cardKey(t testing.TB, c *Card) crypto.PublicKey {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(c.PublicKey)
	if err != nil {
		t.Fatalf("card public key: %v", err)
	}
	return pub
}

// signAndVerify signs a fresh digest with pin and verifies the signature
// with pub (PKCS #1 v1.5 for RSA, ASN.1 ECDSA otherwise).
func signAndVerify(t testing.TB, tp *TPM, c *Card, pin string, pub crypto.PublicKey) {
	t.Helper()
	digest := sha256.Sum256([]byte(time.Now().String()))
	sig, err := tp.Sign(testCtx(t), c, []byte(pin), digest[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if err := verify(pub, digest[:], sig, crypto.SHA256); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
}

func verify(pub crypto.PublicKey, digest, sig []byte, opts crypto.SignerOpts) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errBadSig
		}
		return nil
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			return rsa.VerifyPSS(k, pss.Hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		}
		return rsa.VerifyPKCS1v15(k, opts.HashFunc(), digest, sig)
	}
	return errBadSig
}

type sigError string

func (e sigError) Error() string { return string(e) }

const errBadSig = sigError("bad signature")
