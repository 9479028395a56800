package webauthn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// testCred is a credential made in the test, standing for an authenticator.
type testCred struct {
	alg    int
	signer crypto.Signer
	cose   []byte
}

func newTestCred(t testing.TB, alg int) *testCred {
	t.Helper()
	enc, _ := cbor.CTAP2EncOptions().EncMode()
	c := &testCred{alg: alg}
	var k map[int]any
	if alg == AlgES256 {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		b, _ := priv.PublicKey.Bytes()
		c.signer, k = priv, map[int]any{1: 2, 3: alg, -1: 1, -2: b[1:33], -3: b[33:]}
	} else {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		c.signer, k = priv, map[int]any{1: 1, 3: alg, -1: 6, -2: []byte(pub)}
	}
	c.cose, _ = enc.Marshal(k)
	return c
}

func (c *testCred) authData(rpID string, flags byte, counter uint32, attested bool) []byte {
	h := sha256.Sum256([]byte(rpID))
	b := append(h[:], flags)
	b = binary.BigEndian.AppendUint32(b, counter)
	if attested {
		b[32] |= FlagAT
		b = append(b, make([]byte, 16)...)
		b = binary.BigEndian.AppendUint16(b, 4)
		b = append(b, 1, 2, 3, 4)
		b = append(b, c.cose...)
	}
	return b
}

func (c *testCred) sign(t testing.TB, authData, cdh []byte) []byte {
	msg := slices.Concat(authData, cdh)
	var sig []byte
	var err error
	if c.alg == AlgES256 {
		h := sha256.Sum256(msg)
		sig, err = c.signer.Sign(rand.Reader, h[:], crypto.SHA256)
	} else {
		sig, err = c.signer.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestSelfAttestationAndAssertion(t *testing.T) {
	for _, alg := range []int{AlgES256, AlgEdDSA} {
		c := newTestCred(t, alg)
		cdh := sha256.Sum256([]byte("challenge"))
		ad := c.authData("pam://host", FlagUP|FlagUV, 1, true)
		att := &Attestation{Format: "packed", Alg: alg, Sig: c.sign(t, ad, cdh[:])}
		parsed, err := VerifyAttestation(att, ad, cdh[:])
		if err != nil {
			t.Fatalf("alg %d: attestation: %v", alg, err)
		}
		if parsed.Alg != alg || string(parsed.CredentialID) != "\x01\x02\x03\x04" {
			t.Fatalf("parsed %+v", parsed)
		}
		bad := slices.Clone(att.Sig)
		bad[len(bad)-1] ^= 1
		if _, err := VerifyAttestation(&Attestation{Format: "packed", Alg: alg, Sig: bad}, ad, cdh[:]); !errors.Is(err, ErrAttestation) {
			t.Errorf("alg %d: tampered attestation: %v", alg, err)
		}

		ad2 := c.authData("pam://host", FlagUP, 2, false)
		sig := c.sign(t, ad2, cdh[:])
		n, err := VerifyAssertion(parsed.PublicKey, "pam://host", cdh[:], ad2, sig, true, false, 1)
		if err != nil || n != 2 {
			t.Fatalf("alg %d: assertion: %d %v", alg, n, err)
		}
		if _, err := VerifyAssertion(parsed.PublicKey, "pam://host", cdh[:], ad2, sig, true, true, 1); !errors.Is(err, ErrUserNotVerified) {
			t.Errorf("UV required: %v", err)
		}
		if _, err := VerifyAssertion(parsed.PublicKey, "pam://other", cdh[:], ad2, sig, true, false, 1); !errors.Is(err, ErrRPIDMismatch) {
			t.Errorf("rp id: %v", err)
		}
		other := sha256.Sum256([]byte("other"))
		if _, err := VerifyAssertion(parsed.PublicKey, "pam://host", other[:], ad2, sig, true, false, 1); !errors.Is(err, ErrBadSignature) {
			t.Errorf("other client data: %v", err)
		}
		var ce *CounterError
		if n, err := VerifyAssertion(parsed.PublicKey, "pam://host", cdh[:], ad2, sig, true, false, 5); !errors.As(err, &ce) || !errors.Is(err, ErrPossibleClone) || n != 2 || ce.Last != 5 {
			t.Errorf("counter regression: %d %v", n, err)
		}
	}
}

func TestCounterZeroAllowed(t *testing.T) {
	c := newTestCred(t, AlgEdDSA)
	pub := c.signer.Public()
	ad := c.authData("x", FlagUP, 0, false)
	cdh := make([]byte, 32)
	if _, err := VerifyAssertion(pub, "x", cdh, ad, c.sign(t, ad, cdh), true, false, 0); err != nil {
		t.Fatalf("zero counters: %v", err)
	}
	if _, err := VerifyAssertion(pub, "x", cdh, ad, c.sign(t, ad, cdh), true, false, 3); !errors.Is(err, ErrPossibleClone) {
		t.Fatalf("zero after 3: %v", err)
	}
}

func TestUnsupportedCOSE(t *testing.T) {
	enc, _ := cbor.CTAP2EncOptions().EncMode()
	rsa, _ := enc.Marshal(map[int]any{1: 3, 3: -257, -1: []byte{1}, -2: []byte{1, 0, 1}})
	if _, _, err := ParseCOSEKey(rsa); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Fatalf("RS256: %v", err)
	}
	if _, err := ParseAttestationStatement("tpm", []byte{0xa0}); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Fatalf("tpm format: %v", err)
	}
	if a, err := ParseAttestationStatement("none", []byte{0xa0}); err != nil || a.Format != "none" {
		t.Fatalf("none: %v", err)
	}
}

func TestParseAuthDataRejects(t *testing.T) {
	c := newTestCred(t, AlgES256)
	good := c.authData("x", FlagUP, 1, true)
	for name, b := range map[string][]byte{
		"short":    good[:36],
		"trailing": append(slices.Clone(good), 0),
		"cut key":  good[:len(good)-3],
	} {
		if _, err := ParseAuthData(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzAuthData(f *testing.F) {
	c := newTestCred(f, AlgES256)
	f.Add(c.authData("x", FlagUP, 1, true))
	f.Add(c.authData("x", FlagUP|FlagED, 1, false))
	f.Add(newTestCred(f, AlgEdDSA).authData("y", 0, 7, true))
	f.Fuzz(func(t *testing.T, b []byte) {
		ad, err := ParseAuthData(b)
		if err == nil && len(ad.Raw) != len(b) {
			t.Fatal("raw length")
		}
	})
}

func FuzzCOSEKey(f *testing.F) {
	f.Add(newTestCred(f, AlgES256).cose)
	f.Add(newTestCred(f, AlgEdDSA).cose)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, alg, err := ParseCOSEKey(b)
		if err == nil && (pub == nil || algOf(pub) != alg) {
			t.Fatalf("key %T with alg %d", pub, alg)
		}
	})
}

func FuzzAttestationStatement(f *testing.F) {
	enc, _ := cbor.CTAP2EncOptions().EncMode()
	packed, _ := enc.Marshal(map[string]any{"alg": -7, "sig": []byte{1, 2}})
	x5c, _ := enc.Marshal(map[string]any{"alg": -7, "sig": []byte{1}, "x5c": [][]byte{{0x30, 0}}})
	f.Add("packed", packed)
	f.Add("packed", x5c)
	f.Add("none", []byte{0xa0})
	f.Fuzz(func(t *testing.T, format string, b []byte) {
		a, err := ParseAttestationStatement(format, b)
		if err != nil {
			return
		}
		c := newTestCred(t, AlgES256)
		ad := c.authData("x", FlagUP, 1, true)
		VerifyAttestation(a, ad, make([]byte, 32)) // must not panic
	})
}
