package tpm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/tpm/adminkey"
)

// TestAdminKeyUnblock: a blocked card is unblocked by responses signed
// with its admin key to its current challenge, checked by the TPM; another
// key's responses, responses to an older challenge and a card without
// admin key are refused.
func TestAdminKeyUnblock(t *testing.T) {
	s, tp := newSim(t)
	admin, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, _, err := tp.CreateCard(testCtx(t), CreateOptions{PIN: []byte(testPIN), AdminKey: &admin.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_ = tp.VerifyPIN(testCtx(t), c, []byte(wrongPIN))
	}
	if err := tp.VerifyPIN(testCtx(t), c, []byte(testPIN)); !errors.Is(err, hwerr.ErrPINBlocked) {
		t.Fatalf("card not blocked: %v", err)
	}
	if err := tp.AdminUnblock(testCtx(t), c, [2][]byte{}, []byte("98765432")); !errors.Is(err, hwerr.ErrNotFound) {
		t.Fatalf("unblock without challenge: %v", err)
	}
	old, err := tp.AdminChallenge(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := adminkey.Sign(admin, old)
	if _, err := tp.AdminChallenge(testCtx(t), c); err != nil {
		t.Fatal(err)
	}
	if err := tp.AdminUnblock(testCtx(t), c, stale, []byte("98765432")); !errors.Is(err, hwerr.ErrInvalidInput) {
		t.Fatalf("responses to an older challenge: %v", err)
	}
	ch, _ := tp.AdminChallenge(testCtx(t), c)
	forged, _ := adminkey.Sign(other, ch)
	if err := tp.AdminUnblock(testCtx(t), c, forged, []byte("98765432")); !errors.Is(err, hwerr.ErrInvalidInput) {
		t.Fatalf("responses from another key: %v", err)
	}
	if err := tp.VerifyPIN(testCtx(t), c, []byte(testPIN)); !errors.Is(err, hwerr.ErrPINBlocked) {
		t.Fatalf("refused responses changed the card: %v", err)
	}
	ch, _ = tp.AdminChallenge(testCtx(t), c)
	good, _ := adminkey.Sign(admin, ch)
	if err := tp.AdminUnblock(testCtx(t), c, good, []byte("123")); !errors.Is(err, hwerr.ErrPINPolicy) {
		t.Fatalf("unblock to a short PIN: %v", err)
	}
	ch, _ = tp.AdminChallenge(testCtx(t), c)
	good, _ = adminkey.Sign(admin, ch)
	if err := tp.AdminUnblock(testCtx(t), c, good, []byte("98765432")); err != nil {
		t.Fatalf("AdminUnblock: %v", err)
	}
	if err := tp.AdminUnblock(testCtx(t), c, good, []byte("11111111")); !errors.Is(err, hwerr.ErrNotFound) {
		t.Fatalf("responses used twice: %v", err)
	}
	if tr, err := tp.Tries(testCtx(t), c); err != nil || tr.PIN != hwerr.TriesLeft(5) {
		t.Fatalf("after admin unblock: %+v, %v", tr, err)
	}
	signAndVerify(t, tp, c, "98765432", cardKey(t, c))
	// Nothing of the challenges stays in the TPM (saved sessions flushed).
	if _, err := tp.AdminChallenge(testCtx(t), c); err != nil {
		t.Fatal(err)
	}
	tp.Close()
	again := openSim(t, s, Policy{})
	if n := countLoaded(t, again); n != 0 {
		t.Fatalf("%d objects or sessions left after a reopen", n)
	}
	plain := createCard(t, again, AlgECCP256)
	if _, err := again.AdminChallenge(testCtx(t), plain); !errors.Is(err, hwerr.ErrNotSupported) {
		t.Fatalf("challenge on a card without admin key: %v", err)
	}
}
