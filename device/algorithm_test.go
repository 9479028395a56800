package device

import (
	"crypto"
	"crypto/rsa"
	"testing"

	"github.com/hwauthd/hwauthd/ipc"
)

func TestSignAlgorithms(t *testing.T) {
	for _, tc := range []struct {
		name string
		hash crypto.Hash
		rsa  bool
		pss  bool
	}{
		{ipc.AlgECDSASHA256, crypto.SHA256, false, false},
		{ipc.AlgECDSASHA384, crypto.SHA384, false, false},
		{ipc.AlgRSAPKCS1v15SHA256, crypto.SHA256, true, false},
		{ipc.AlgRSAPSSSHA256, crypto.SHA256, true, true},
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
	if len(SignAlgorithms) != 4 {
		t.Errorf("%d algorithms, the API documents 4", len(SignAlgorithms))
	}
	for _, bad := range []string{"", "ECDSA-SHA256", "ecdsa-sha512", "rsa-pss"} {
		if a, ok := ParseSignAlgorithm(bad); ok || a.Hash() != 0 || a.SignerOpts() != nil {
			t.Errorf("ParseSignAlgorithm(%q) = %q, %v", bad, a, ok)
		}
	}
}
