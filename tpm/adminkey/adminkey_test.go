package adminkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/hwauthd/hwauthd/device"
)

// TestSign: each response is the admin key's signature over its own
// challenge's PolicySigned digest (the nonce and four zero bytes), not over
// the other challenge's nor over the bare nonce. That the TPM accepts them
// is tested against swtpm in package tpm (TestAdminKeyUnblock).
func TestSign(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ch := device.AdminChallenge{Challenges: [2][]byte{[]byte("first nonce"), []byte("second nonce")}}
	sigs, err := Sign(key, ch)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(append([]byte("first nonce"), 0, 0, 0, 0))
	if Digest(ch.Challenges[0]) != want {
		t.Fatalf("Digest = %x, want %x", Digest(ch.Challenges[0]), want)
	}
	for i, sig := range sigs {
		own, other := Digest(ch.Challenges[i]), Digest(ch.Challenges[1-i])
		bare := sha256.Sum256(ch.Challenges[i])
		if !ecdsa.VerifyASN1(&key.PublicKey, own[:], sig) {
			t.Errorf("response %d does not verify over its challenge's digest", i)
		}
		if ecdsa.VerifyASN1(&key.PublicKey, other[:], sig) || ecdsa.VerifyASN1(&key.PublicKey, bare[:], sig) {
			t.Errorf("response %d verifies over another digest", i)
		}
	}
}
