package daemontest

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"net/http"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
)

// The harness is only as good as its fakes: these tests pin down that the
// fake card's counters behave as a PIV card's, that the fake account
// database answers as NSS would, and that each client carries its own
// identity (or none).

// TestCardCounters: a wrong PIN costs a try and says how many are left, the
// right one resets the counter, three wrong ones block the PIN (then even
// the right one is refused), the PUK unblocks it and sets the new PIN; a
// card that hides its tries says nothing about them.
func TestCardCounters(t *testing.T) {
	ctx := context.Background()
	c, err := NewCard(CardOptions{Label: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var wrong *hwerr.PINIncorrect
	if err := c.VerifyPIN(ctx, []byte("000000")); !errors.As(err, &wrong) || wrong.RetriesLeft != hwerr.TriesLeft(2) || c.PINTriesLeft() != 2 {
		t.Fatalf("a wrong PIN: %v, %d left", err, c.PINTriesLeft())
	}
	if err := c.VerifyPIN(ctx, []byte(PIN)); err != nil || c.PINTriesLeft() != 3 {
		t.Fatalf("the right PIN: %v, %d left", err, c.PINTriesLeft())
	}
	for range 3 {
		_ = c.ChangePIN(ctx, []byte("000000"), []byte("999999"))
	}
	if st, _ := c.PINState(ctx); !st.Blocked || !c.Info().PIN.Blocked {
		t.Fatalf("after three wrong PINs: %+v", st)
	}
	if err := c.VerifyPIN(ctx, []byte(PIN)); !errors.Is(err, hwerr.ErrPINBlocked) {
		t.Fatalf("the right PIN on a blocked card: %v", err)
	}
	if err := c.UnblockPIN(ctx, []byte("00000000"), []byte("654321")); !errors.As(err, &wrong) || c.PUKTriesLeft() != 2 {
		t.Fatalf("a wrong PUK: %v, %d left", err, c.PUKTriesLeft())
	}
	if err := c.UnblockPIN(ctx, []byte(PUK), []byte("654321")); err != nil || c.PINTriesLeft() != 3 || c.PUKTriesLeft() != 3 {
		t.Fatalf("the PUK: %v", err)
	}
	if err := c.ChangePIN(ctx, []byte("654321"), []byte(PIN)); err != nil {
		t.Fatalf("change to the first PIN: %v", err)
	}
	if c.PINsSeen() != 7 || c.PUKsSeen() != 2 {
		t.Errorf("seen %d PINs and %d PUKs, want 7 and 2", c.PINsSeen(), c.PUKsSeen())
	}

	hidden, err := NewCard(CardOptions{HideTries: true, PINTries: 1, PUKTries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := hidden.VerifyPIN(ctx, []byte("000000")); !errors.As(err, &wrong) || wrong.RetriesLeft != hwerr.TriesLeft(-1) {
		t.Fatalf("a wrong PIN on a card that hides its tries: %v", err)
	}
	if st, _ := hidden.PINState(ctx); st.RetriesLeft.Known() || !st.Blocked {
		t.Errorf("the state of a card that hides its tries: %+v", st)
	}
	if err := hidden.UnblockPIN(ctx, []byte("00000000"), []byte(PIN)); err == nil {
		t.Fatal("a wrong PUK was taken")
	}
	if err := hidden.UnblockPIN(ctx, []byte(PUK), []byte(PIN)); !errors.Is(err, hwerr.ErrPINBlocked) {
		t.Errorf("the PUK once its one try is spent: %v", err)
	}
}

// TestCardSigns: slot 9a signs after the PIN with the key the card lists;
// another slot, another algorithm or no PIN are refused.
func TestCardSigns(t *testing.T) {
	ctx := context.Background()
	c, err := NewCard(CardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("daemontest"))
	req := device.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: digest[:], PIN: []byte(PIN)}
	sig, err := c.Sign(ctx, req)
	if err != nil || !ecdsa.VerifyASN1(c.Public(), digest[:], sig) {
		t.Fatalf("sign: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*device.SignRequest)
		want   error
	}{
		{"slot 9c", func(r *device.SignRequest) { r.Key = "9c" }, hwerr.ErrNotFound},
		{"RSA", func(r *device.SignRequest) { r.Algorithm = "rsa-pkcs1-sha256" }, hwerr.ErrNotSupported},
		{"no PIN", func(r *device.SignRequest) { r.PIN = nil }, hwerr.ErrPINRequired},
	} {
		r := req
		tc.change(&r)
		if _, err := c.Sign(ctx, r); !errors.Is(err, tc.want) {
			t.Errorf("sign with %s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if info := c.Info(); info.ID != c.ID() || len(info.Keys) != 1 || info.Keys[0].ID != "9a" || info.Kind != device.KindSmartcard {
		t.Errorf("info: %+v", info)
	}
}

// TestAccounts: root and the configured groups exist from the start; users
// get distinct uids and the groups asked for; a recreated account keeps its
// name and gets a new uid.
func TestAccounts(t *testing.T) {
	cfg := config.Defaults()
	a := NewAccounts(cfg.Access)
	if name, ok := a.UserName(0); !ok || name != "root" {
		t.Fatalf("uid 0: %q %v", name, ok)
	}
	admin, ok := a.GroupID(cfg.Access.AdminGroup)
	if !ok {
		t.Fatalf("no group %q", cfg.Access.AdminGroup)
	}
	if _, ok := a.GroupID("nosuchgroup"); ok {
		t.Error("an unknown group exists")
	}
	it := a.Add("it", cfg.Access.AdminGroup)
	alice := a.Add("alice")
	if it.UID == alice.UID || len(it.Groups) != 1 || it.Groups[0] != admin || len(alice.Groups) != 0 {
		t.Fatalf("it %+v, alice %+v", it, alice)
	}
	if again := a.Add("alice", cfg.Access.AdminGroup); again.UID != alice.UID || len(again.Groups) != 0 {
		t.Errorf("adding alice again changed her: %+v", again)
	}
	if uid, ok := a.UserID("alice"); !ok || uid != alice.UID || !a.UserExists("alice") || a.UserExists("bob") {
		t.Errorf("alice's uid %d %v", uid, ok)
	}
	newAlice := a.Recreate("alice")
	if newAlice.UID == alice.UID {
		t.Fatal("a recreated account kept its uid")
	}
	if _, ok := a.UserName(alice.UID); ok {
		t.Error("the old uid still names an account")
	}
	if name, ok := a.UserName(newAlice.UID); !ok || name != "alice" {
		t.Errorf("the new uid: %q %v", name, ok)
	}
}

// TestHarnessIdentities: each client is its user to the daemon (an admin
// passes the admin-only virtual card routes, a user does not), and a
// connection without credentials gets no answer.
func TestHarnessIdentities(t *testing.T) {
	h := New(t)
	it := h.AddUser("it", h.Config.Access.AdminGroup)
	if p := h.Peer("it"); p.UID != it.UID {
		t.Fatalf("Peer(it) = %+v, AddUser gave %+v", p, it)
	}
	ctx := context.Background()
	var e *ipc.Error
	if _, err := h.Client("it").VirtualSmartcards(ctx); !errors.As(err, &e) || e.Code != ipc.CodeBackendUnavailable {
		t.Errorf("an admin lists virtual cards (the TPM backend is off): %v", err)
	}
	if _, err := h.Client("alice").VirtualSmartcards(ctx); !errors.As(err, &e) || e.Code != ipc.CodeUnauthorized {
		t.Errorf("a user lists virtual cards: %v", err)
	}
	card := h.Insert(CardOptions{Label: "present"})
	if a, err := h.Client("alice").Authenticator(ctx, card.ID()); err != nil || a.Label != "present" {
		t.Fatalf("the inserted card: %+v %v", a, err)
	}
	h.Remove(card)
	if _, err := h.Client("alice").Authenticator(ctx, card.ID()); !errors.As(err, &e) || e.Code != ipc.CodeNotFound {
		t.Errorf("the removed card: %v", err)
	}
	resp, err := h.HTTP("alice").Get("http://hwauthd/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/status as alice: HTTP %d", resp.StatusCode)
	}
	if resp, err := h.HTTP("").Get("http://hwauthd/v1/status"); err == nil {
		resp.Body.Close()
		t.Errorf("GET /v1/status without credentials: HTTP %d", resp.StatusCode)
	}
}

// TestSecurityKey: no PIN until one is set (and only once), a wrong PIN
// costs one of eight tries, no PUK and no raw signatures, ES256 only, and an
// assertion only for the relying party the credential was made for, signed
// over authData || clientDataHash.
func TestSecurityKey(t *testing.T) {
	ctx := context.Background()
	h := New(t)
	k := h.InsertSecurityKey("key", "")
	if err := k.VerifyPIN(ctx, []byte("1234")); !errors.Is(err, hwerr.ErrPINRequired) {
		t.Fatalf("verify before a PIN is set: %v", err)
	}
	if err := k.SetPIN(ctx, []byte("1234")); err != nil {
		t.Fatal(err)
	}
	if err := k.SetPIN(ctx, []byte("5678")); !errors.Is(err, hwerr.ErrNotSupported) {
		t.Fatalf("set the PIN twice: %v", err)
	}
	var wrong *hwerr.PINIncorrect
	if err := k.ChangePIN(ctx, []byte("0000"), []byte("5678")); !errors.As(err, &wrong) || wrong.RetriesLeft != hwerr.TriesLeft(7) {
		t.Fatalf("change with a wrong PIN: %v", err)
	}
	if err := k.ChangePIN(ctx, []byte("1234"), []byte("5678")); err != nil {
		t.Fatal(err)
	}
	if st, _ := k.PINState(ctx); st.RetriesLeft != hwerr.TriesLeft(8) || k.Info().Kind != device.KindSecurityKey {
		t.Fatalf("state after the right PIN: %+v", st)
	}
	if err := k.UnblockPIN(ctx, []byte("x"), []byte("y")); !errors.Is(err, hwerr.ErrNotSupported) {
		t.Errorf("unblock: %v", err)
	}
	if _, err := k.Sign(ctx, device.SignRequest{}); !errors.Is(err, hwerr.ErrNotSupported) {
		t.Errorf("sign: %v", err)
	}
	cdh := sha256.Sum256([]byte("client data"))
	mc := device.MakeCredential{RPID: "example.com", ClientDataHash: cdh[:], PIN: []byte("5678")}
	if _, err := k.MakeCredential(ctx, device.MakeCredential{RPID: "example.com", Algorithm: "eddsa", PIN: []byte("5678")}); !errors.Is(err, hwerr.ErrNotSupported) {
		t.Errorf("an EdDSA credential: %v", err)
	}
	c, err := k.MakeCredential(ctx, mc)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(c.PublicKeyDER)
	if err != nil {
		t.Fatal(err)
	}
	ga := device.GetAssertion{RPID: "other.example", ClientDataHash: cdh[:], CredentialIDs: [][]byte{c.ID}}
	if _, err := k.GetAssertion(ctx, ga); !errors.Is(err, hwerr.ErrNotFound) {
		t.Errorf("an assertion for another relying party: %v", err)
	}
	ga.RPID, ga.PIN = "example.com", []byte("0000")
	if _, err := k.GetAssertion(ctx, ga); !errors.As(err, &wrong) {
		t.Errorf("an assertion with a wrong PIN: %v", err)
	}
	ga.PIN = nil
	a, err := k.GetAssertion(ctx, ga)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(append(append([]byte{}, a.AuthData...), cdh[:]...))
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], a.Signature) {
		t.Error("the assertion does not verify")
	}
}
