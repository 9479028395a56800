package tpm

import (
	"crypto"
	"crypto/sha256"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// BenchmarkSignEngine is one PIN-checked Sign through the engine:
// PolicySecret with the PIN in the held salted HMAC session (the TPM
// counts) in the held policy session, TPM2_Sign with the key kept loaded.
// Nothing is written to disk.
func BenchmarkSignEngine(b *testing.B) {
	_, tp := newSim(b)
	c := createCard(b, tp, AlgECCP256)
	digest := sha256.Sum256([]byte("bench"))
	ctx := testCtx(b)
	for b.Loop() {
		if _, err := tp.Sign(ctx, c, []byte(testPIN), digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignEngineTwoCards is BenchmarkSignEngine with two cards
// signing in turn: both keys stay loaded.
func BenchmarkSignEngineTwoCards(b *testing.B) { benchCardsInTurn(b, 2) }

// BenchmarkSignEngineFiveCards is BenchmarkSignEngine with five cards
// signing in turn, more than the keys the engine holds: every signature
// flushes the least recently used key and loads the card's saved context
// (TPM2_FlushContext, TPM2_ContextLoad) before its two commands.
func BenchmarkSignEngineFiveCards(b *testing.B) { benchCardsInTurn(b, 5) }

func benchCardsInTurn(b *testing.B, n int) {
	_, tp := newSim(b)
	cards := make([]*Card, n)
	for i := range cards {
		cards[i] = createCard(b, tp, AlgECCP256)
	}
	digest := sha256.Sum256([]byte("bench"))
	ctx := testCtx(b)
	i := 0
	for b.Loop() {
		if _, err := tp.Sign(ctx, cards[i%n], []byte(testPIN), digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSignDirect is a lone TPM2_Sign straight through go-tpm on the
// same swtpm: an ECC P-256 key of the same template without policy
// (password authorization, empty), already loaded. It is the floor no
// PIN-checked signature can go below.
func BenchmarkSignDirect(b *testing.B) {
	_, tp := newSim(b)
	if err := tp.lock(testCtx(b)); err != nil {
		b.Fatal(err)
	}
	defer tp.unlock()
	tmpl, err := signingKeyTemplate(AlgECCP256, nil)
	if err != nil {
		b.Fatal(err)
	}
	tmpl.ObjectAttributes.UserWithAuth = true
	parent := tpm2.AuthHandle{Handle: tp.srk.handle.Handle, Name: tp.srk.handle.Name, Auth: tpm2.PasswordAuth(nil)}
	key, err := tpm2.CreateLoaded{ParentHandle: parent, InPublic: tpm2.New2BTemplate(&tmpl)}.Execute(tp.tr)
	if err != nil {
		b.Fatal(err)
	}
	defer tp.flushLocked(key.ObjectHandle)
	digest := sha256.Sum256([]byte("bench"))
	scheme := tpm2.TPMTSigScheme{
		Scheme:  tpm2.TPMAlgECDSA,
		Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256}),
	}
	for b.Loop() {
		_, err := tpm2.Sign{
			KeyHandle:  tpm2.AuthHandle{Handle: key.ObjectHandle, Name: key.Name, Auth: tpm2.PasswordAuth(nil)},
			Digest:     tpm2.TPM2BDigest{Buffer: digest[:]},
			InScheme:   scheme,
			Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
		}.Execute(tp.tr)
		if err != nil {
			b.Fatal(err)
		}
	}
}
