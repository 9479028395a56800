package device

import (
	"crypto"
	"crypto/rsa"
	"testing"
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
