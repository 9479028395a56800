package device

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
)

func TestSignAlgorithms(t *testing.T) {
	for _, tc := range []struct {
		name string
		hash crypto.Hash
		rsa  bool
		pss  bool
	}{
		// The names docs/api.md gives the sign call's algorithm.
		{"ecdsa-sha256", crypto.SHA256, false, false},
		{"ecdsa-sha384", crypto.SHA384, false, false},
		{"rsa-pkcs1v15-sha256", crypto.SHA256, true, false},
		{"rsa-pss-sha256", crypto.SHA256, true, true},
	} {
		a, ok := ParseSignAlgorithm(tc.name)
		if !ok || string(a) != tc.name {
			t.Fatalf("ParseSignAlgorithm(%q) = %q, %v", tc.name, a, ok)
		}
		if a.Hash() != tc.hash || a.RSA() != tc.rsa {
			t.Errorf("%s: hash %v rsa %v, want %v %v", a, a.Hash(), a.RSA(), tc.hash, tc.rsa)
		}
		opts := a.SignerOpts()
		pss, isPSS := opts.(*rsa.PSSOptions)
		if opts == nil || opts.HashFunc() != tc.hash || isPSS != tc.pss || isPSS && pss.SaltLength != rsa.PSSSaltLengthEqualsHash {
			t.Errorf("%s: signer opts %#v", a, opts)
		}
	}
	if got := SignAlgorithmNames(); got != "ecdsa-sha256, ecdsa-sha384, rsa-pkcs1v15-sha256, rsa-pss-sha256" {
		t.Errorf("SignAlgorithmNames() = %q", got)
	}
	if len(SignAlgorithms) != 4 {
		t.Errorf("%d algorithms, the API documents 4", len(SignAlgorithms))
	}
	for _, bad := range []string{"", "ECDSA-SHA256", "ecdsa-sha512", "rsa-pss"} {
		if a, ok := ParseSignAlgorithm(bad); ok || a.Hash() != 0 || a.SignerOpts() != nil {
			t.Errorf("ParseSignAlgorithm(%q) = %q, %v", bad, a, ok)
		}
	}
}

// TestVerifyAndFits signs with Go's keys as a device would (SignerOpts) and
// checks Verify, Fits and SignAlgorithmFor against every key kind.
func TestVerifyAndFits(t *testing.T) {
	k := testKeys(t)
	p256, p384, rsaKey := k.p256, k.p384, k.rsa
	for _, tc := range []struct {
		name  string
		key   crypto.Signer
		proof SignAlgorithm
	}{{"P-256", p256, ECDSASHA256}, {"P-384", p384, ECDSASHA384}, {"RSA-2048", rsaKey, RSAPKCS1v15SHA256}} {
		if got, err := SignAlgorithmFor(tc.key.Public()); got != tc.proof || err != nil {
			t.Errorf("%s: SignAlgorithmFor = %q, %v; want %q", tc.name, got, err, tc.proof)
		}
		_, isRSA := tc.key.(*rsa.PrivateKey)
		for _, a := range SignAlgorithms {
			if a.Fits(tc.key.Public()) != (a.RSA() == isRSA) {
				t.Errorf("%s: %s fits %v", tc.name, a, a.Fits(tc.key.Public()))
			}
			h := a.Hash().New()
			h.Write([]byte(tc.name))
			digest := h.Sum(nil)
			if !a.Fits(tc.key.Public()) {
				if err := a.Verify(tc.key.Public(), digest, []byte{1}); err == nil {
					t.Errorf("%s: %s verified with a key it does not fit", tc.name, a)
				}
				continue
			}
			sig, err := tc.key.Sign(rand.Reader, digest, a.SignerOpts())
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, a, err)
			}
			if err := a.Verify(tc.key.Public(), digest, sig); err != nil {
				t.Errorf("%s %s: %v", tc.name, a, err)
			}
			sig[len(sig)-1] ^= 1
			if err := a.Verify(tc.key.Public(), digest, sig); err == nil {
				t.Errorf("%s %s: a changed signature verifies", tc.name, a)
			}
		}
	}
	if _, err := SignAlgorithmFor(ed25519.PublicKey(make([]byte, 32))); !errors.Is(err, hwerr.ErrNotSupported) {
		t.Errorf("SignAlgorithmFor(Ed25519) = %v, want not supported", err)
	}
}

// TestVerifyTellsPSSFromPKCS1v15: an RSA signature verifies only as the
// scheme that made it.
func TestVerifyTellsPSSFromPKCS1v15(t *testing.T) {
	key := testKeys(t).rsa
	digest := make([]byte, 32)
	pss, err := rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := RSAPSSSHA256.Verify(key.Public(), digest, pss); err != nil {
		t.Errorf("PSS with the longest salt: %v", err)
	}
	if RSAPKCS1v15SHA256.Verify(key.Public(), digest, pss) == nil {
		t.Error("a PSS signature verified as PKCS #1 v1.5")
	}
}

// TestVirtualCardAlgorithmsNameKeys: each algorithm a virtual card may be
// created with is the name KeyAlgorithmOf gives such a key, so a card
// lists the algorithm it was created with.
func TestVirtualCardAlgorithmsNameKeys(t *testing.T) {
	k := testKeys(t)
	p256, p384, rsaKey := k.p256, k.p384, k.rsa
	for i, pub := range []crypto.PublicKey{p256.Public(), p384.Public(), rsaKey.Public()} {
		if got, err := KeyAlgorithmOf(pub); err != nil || got != VirtualCardAlgorithms[i] {
			t.Errorf("KeyAlgorithmOf(%T) = %q, %v; VirtualCardAlgorithms[%d] is %q", pub, got, err, i, VirtualCardAlgorithms[i])
		}
	}
	if got := VirtualCardAlgorithmNames(); got != "ecc-p256, ecc-p384, rsa-2048" {
		t.Errorf("VirtualCardAlgorithmNames() = %q", got)
	}
}
