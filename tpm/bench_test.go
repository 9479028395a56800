package tpm

import (
	"crypto"
	"crypto/sha256"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// BenchmarkSignEngine is one Sign through the engine: PIN counter saves,
// reading the card root, loading and unsealing the PIN-sealed secret in a
// salted session, loading the key, TPM2_Sign, flushing.
func BenchmarkSignEngine(b *testing.B) {
	_, tp := newSim(b)
	c := createCard(b, tp, AlgECCP256)
	var st store
	digest := sha256.Sum256([]byte("bench"))
	ctx := testCtx(b)
	for b.Loop() {
		if _, err := tp.Sign(ctx, c, []byte(testPIN), st.save, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
		st.saves = st.saves[:0]
	}
}

// BenchmarkSignDirect is TPM2_Sign straight through go-tpm on the same
// swtpm with the same key already loaded and the same HMAC session kind.
func BenchmarkSignDirect(b *testing.B) {
	_, tp := newSim(b)
	c := createCard(b, tp, AlgECCP256)
	var st store
	if err := tp.lock(testCtx(b)); err != nil {
		b.Fatal(err)
	}
	defer tp.unlock()
	k, err := tp.unlockLocked(c, pinSecret, []byte(testPIN), st.save)
	if err != nil {
		b.Fatal(err)
	}
	r, err := tp.readRootLocked(c)
	if err != nil {
		b.Fatal(err)
	}
	h, err := tp.loadLocked(r, c.KeyPublic, c.KeyPrivate)
	if err != nil {
		b.Fatal(err)
	}
	defer tp.flushLocked(h.Handle)
	digest := sha256.Sum256([]byte("bench"))
	scheme, _ := signScheme(c.Algorithm, digest[:], crypto.SHA256)
	for b.Loop() {
		_, err := tpm2.Sign{
			KeyHandle:  tpm2.AuthHandle{Handle: h.Handle, Name: h.Name, Auth: keySession(k)},
			Digest:     tpm2.TPM2BDigest{Buffer: digest[:]},
			InScheme:   scheme,
			Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
		}.Execute(tp.tr)
		if err != nil {
			b.Fatal(err)
		}
	}
}
