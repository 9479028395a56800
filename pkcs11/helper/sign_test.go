package helper

import (
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pkcs11/wire"
)

// TestSignRefusesBeforeTheToken: an algorithm the API does not name, or a
// digest of the wrong length for it, is refused before any module call.
func TestSignRefusesBeforeTheToken(t *testing.T) {
	s := &Server{}
	for _, tc := range []struct {
		alg    string
		digest int
		want   error
	}{
		{"ecdsa-sha512", 64, hwerr.ErrNotSupported},
		{"", 32, hwerr.ErrNotSupported},
		{"ecdsa-sha384", 32, hwerr.ErrInvalidInput},
		{"rsa-pss-sha256", 48, hwerr.ErrInvalidInput},
	} {
		_, err := s.sign(&wire.Request{Op: wire.OpSign, Algorithm: tc.alg, Digest: make([]byte, tc.digest)})
		if !errors.Is(err, tc.want) {
			t.Errorf("sign %q with %d bytes: %v, want %v", tc.alg, tc.digest, err, tc.want)
		}
	}
}
