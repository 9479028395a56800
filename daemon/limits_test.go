package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon/daemontest"
	"github.com/hwauthd/hwauthd/ipc"
)

// code is the API error code of err ("" for none).
func code(err error) ipc.Code {
	var e *ipc.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// TestRegistrationIsNoPINOracle (issue 13, item 1): registering a card that
// is registered to someone else is refused before any PIN reaches it,
// whoever asks; with policy.allow_shared it goes through.
func TestRegistrationIsNoPINOracle(t *testing.T) {
	ctx := context.Background()
	h := daemontest.New(t)
	h.AddUser("alice")
	h.AddUser("mallory")
	card := h.Insert(daemontest.CardOptions{})
	root := h.Client("root")
	if _, err := root.Register(ctx, "alice", ipc.RegisterRequest{Authenticator: card.ID(), PIN: ipc.Secret(daemontest.PIN)}); err != nil {
		t.Fatal(err)
	}
	seen := card.PINsSeen()
	for _, guess := range []string{"000000", "111111", "222222", daemontest.PIN} {
		_, err := h.Client("mallory").Register(ctx, "mallory", ipc.RegisterRequest{Authenticator: card.ID(), PIN: ipc.Secret(guess)})
		if code(err) != ipc.CodeRegisteredToAnotherUser {
			t.Fatalf("mallory registers alice's card: %v, want registered_to_another_user", err)
		}
	}
	if _, err := root.Register(ctx, "mallory", ipc.RegisterRequest{Authenticator: card.ID(), PIN: ipc.Secret("000000")}); code(err) != ipc.CodeRegisteredToAnotherUser {
		t.Fatalf("an admin registers alice's card to mallory: %v", err)
	}
	if _, err := h.Client("alice").Register(ctx, "alice", ipc.RegisterRequest{Authenticator: card.ID(), PIN: ipc.Secret("000000")}); code(err) != ipc.CodeAlreadyRegistered {
		t.Fatalf("alice registers her card again: %v", err)
	}
	if card.PINsSeen() != seen || card.PINTriesLeft() != 3 {
		t.Fatalf("the card saw %d PINs after registration, %d tries left", card.PINsSeen()-seen, card.PINTriesLeft())
	}

	shared := daemontest.New(t, func(c *config.Config) { c.Policy.AllowShared = true })
	shared.AddUser("alice")
	shared.AddUser("bob")
	sc := shared.Insert(daemontest.CardOptions{})
	for _, u := range []string{"alice", "bob"} {
		if _, err := shared.Client(u).Register(ctx, u, ipc.RegisterRequest{Authenticator: sc.ID(), PIN: ipc.Secret(daemontest.PIN)}); err != nil {
			t.Fatalf("shared card for %s: %v", u, err)
		}
	}
}

// TestFailuresAreCountedPerAuthenticatorAndUser (issue 13, item 4): root
// signing in many users is limited per user's authenticator, not as one
// caller; PIN and PUK are counted apart; a success resets.
func TestFailuresAreCountedPerAuthenticatorAndUser(t *testing.T) {
	ctx := context.Background()
	h := daemontest.New(t, func(c *config.Config) { c.SignIn.MaxFailures = 2 })
	root := h.Client("root")
	// Cards that do not tell their tries: only the limiter stops guessing.
	cards := map[string]*daemontest.Card{}
	for _, u := range []string{"alice", "bob"} {
		h.AddUser(u)
		cards[u] = h.Insert(daemontest.CardOptions{HideTries: true, PINTries: 10})
		if _, err := root.Register(ctx, u, ipc.RegisterRequest{Authenticator: cards[u].ID(), PIN: ipc.Secret(daemontest.PIN)}); err != nil {
			t.Fatal(err)
		}
	}
	signIn := func(user, pin string) error {
		_, err := root.SignIn(ctx, ipc.SignInRequest{User: user, PIN: ipc.Secret(pin)})
		return err
	}
	// A success resets: one failure, a success, two failures is not over.
	if code(signIn("alice", "000000")) != ipc.CodePINIncorrect || signIn("alice", daemontest.PIN) != nil {
		t.Fatal("first failure, then success")
	}
	for range 2 {
		if err := signIn("alice", "000000"); code(err) != ipc.CodePINIncorrect {
			t.Fatalf("wrong PIN: %v", err)
		}
	}
	seen := cards["alice"].PINsSeen()
	if err := signIn("alice", daemontest.PIN); code(err) != ipc.CodeTooManyAttempts {
		t.Fatalf("over the limit: %v, want too_many_attempts", err)
	}
	if cards["alice"].PINsSeen() != seen {
		t.Fatal("a refused attempt reached the card")
	}
	if err := signIn("bob", daemontest.PIN); err != nil {
		t.Fatalf("bob, signed in by the same root after alice's failures: %v", err)
	}
	// PUK attempts are counted apart from the PIN's.
	if _, err := root.UnblockPIN(ctx, cards["alice"].ID(), []byte(daemontest.PUK), []byte(daemontest.PIN)); err != nil {
		t.Fatalf("unblock with the PUK after PIN failures: %v", err)
	}
}

// TestLimiterNeverAnswersBeforeTheCard (issue 13, item 4): with a limit
// below the card's tries, the owner's wrong PINs still reach the card until
// it blocks itself, and the PUK unblocks it.
func TestLimiterNeverAnswersBeforeTheCard(t *testing.T) {
	ctx := context.Background()
	h := daemontest.New(t, func(c *config.Config) { c.SignIn.MaxFailures = 2 })
	h.AddUser("alice")
	card := h.Insert(daemontest.CardOptions{PINTries: 6})
	alice := h.Client("alice")
	if _, err := alice.Register(ctx, "alice", ipc.RegisterRequest{Authenticator: card.ID(), PIN: ipc.Secret(daemontest.PIN)}); err != nil {
		t.Fatal(err)
	}
	for left := 5; left >= 0; left-- {
		_, err := alice.VerifyPIN(ctx, card.ID(), []byte("000000"))
		want := ipc.CodePINIncorrect
		if left == 0 {
			want = ipc.CodePINBlocked
		}
		if code(err) != want || card.PINTriesLeft() != left {
			t.Fatalf("wrong PIN: %v with %d tries left, want %s with %d", err, card.PINTriesLeft(), want, left)
		}
	}
	if _, err := alice.SignIn(ctx, ipc.SignInRequest{User: "alice", PIN: ipc.Secret(daemontest.PIN)}); code(err) != ipc.CodePINBlocked {
		t.Fatalf("sign-in on the blocked card: %v, want pin_blocked", err)
	}
	if _, err := h.Client("root").UnblockPIN(ctx, card.ID(), []byte(daemontest.PUK), []byte(daemontest.PIN)); err != nil {
		t.Fatalf("unblock: %v", err)
	}
	if _, err := alice.SignIn(ctx, ipc.SignInRequest{User: "alice", PIN: ipc.Secret(daemontest.PIN)}); err != nil {
		t.Fatalf("sign-in after the unblock: %v", err)
	}
}

// TestNamesWithControlCharacters (issue 13, item 8): a user name with a NUL
// byte does not pass as a shorter one, and labels may not hold one either;
// a key given twice is refused even where the access checker reads it.
func TestNamesWithControlCharacters(t *testing.T) {
	h := daemontest.New(t)
	h.AddUser("alice")
	card := h.Insert(daemontest.CardOptions{})
	pin := fmt.Sprintf("%q", daemontest.PIN)
	for _, tc := range []struct{ caller, method, path, body string }{
		{"root", "GET", "/v1/users/alice%00/registrations", ""},
		{"root", "GET", "/v1/users/alice%00x/links", ""},
		{"alice", "GET", "/v1/users/alice%00/registrations", ""},
		{"root", "POST", "/v1/sign-in", `{"user": "alice\u0000", "pin": ` + pin + `}`},
		{"alice", "POST", "/v1/sign-in", `{"user": "alice\u0000", "pin": ` + pin + `}`},
		{"alice", "POST", "/v1/users/alice/registrations", fmt.Sprintf(`{"authenticator": %q, "pin": %s, "label": "a\u0000b"}`, card.ID(), pin)},
		{"root", "POST", "/v1/virtual-smartcards", `{"label": "x\u0007", "pin": ` + pin + `, "puk": "12345678"}`},
		{"alice", "POST", "/v1/sign-in", `{"user": "root", "user": "alice", "pin": ` + pin + `}`},
		{"alice", "POST", "/v1/authenticators/" + card.ID() + "/pin/verify", `{"pin": "000000", "pin": ` + pin + `}`},
	} {
		status, got := call(t, h.HTTP(tc.caller), tc.method, tc.path, tc.body, false)
		if got != string(ipc.CodeBadRequest) {
			t.Errorf("%s %s %s as %s: %d %s, want bad_request", tc.method, tc.path, tc.body, tc.caller, status, got)
		}
	}
	if card.PINsSeen() != 0 {
		t.Errorf("the card saw %d PINs", card.PINsSeen())
	}
}
