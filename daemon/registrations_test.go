package daemon_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon/daemontest"
	"github.com/hwauthd/hwauthd/ipc"
)

// TestRegistrationRefusals: a sixth authenticator is refused with
// limit_reached and the limit in words and details; the same card twice is
// already_registered; another user's card is registered_to_another_user; a
// default must name one of the user's registrations; an unknown account is
// not_found. Nothing refused is stored.
func TestRegistrationRefusals(t *testing.T) {
	h := daemontest.New(t)
	h.AddUser("alice")
	h.AddUser("bob")
	root, ctx := h.Client("root"), context.Background()
	register := func(user string, c *daemontest.Card) (*ipc.Registration, error) {
		return root.Register(ctx, user, ipc.RegisterRequest{Authenticator: c.ID(), PIN: ipc.Secret(daemontest.PIN)})
	}
	var cards []*daemontest.Card
	var regs []string
	for range h.Config.Policy.MaxAuthenticators {
		c := h.Insert(daemontest.CardOptions{Label: "alice's"})
		reg, err := register("alice", c)
		if err != nil {
			t.Fatal(err)
		}
		cards, regs = append(cards, c), append(regs, reg.ID)
	}
	_, err := register("alice", h.Insert(daemontest.CardOptions{Label: "one too many"}))
	var e *ipc.Error
	if !errors.As(err, &e) || e.Code != ipc.CodeLimitReached || !strings.Contains(e.Message, "already have five") {
		t.Fatalf("a sixth registration: %v", err)
	}
	if limit, ok := e.Details["limit"].(float64); !ok || int(limit) != h.Config.Policy.MaxAuthenticators {
		t.Errorf("limit_reached details: %v", e.Details)
	}
	if _, err := register("alice", cards[0]); !isCode(err, ipc.CodeAlreadyRegistered) {
		t.Errorf("the same card again: %v", err)
	}
	if _, err := register("bob", cards[1]); !isCode(err, ipc.CodeRegisteredToAnotherUser) {
		t.Errorf("alice's card for bob: %v", err)
	}
	if _, err := register("ghost", h.Insert(daemontest.CardOptions{})); !isCode(err, ipc.CodeNotFound) {
		t.Errorf("a card for an account that does not exist: %v", err)
	}
	list, err := root.Registrations(ctx, "alice")
	if err != nil || len(list.Registrations) != len(regs) {
		t.Fatalf("alice's registrations after the refusals: %+v %v", list, err)
	}
	if list, err := root.Registrations(ctx, "bob"); err != nil || len(list.Registrations) != 0 {
		t.Fatalf("bob's registrations after the refusal: %+v %v", list, err)
	}

	alice := h.Client("alice")
	for _, tc := range []struct {
		name, registration string
		code               ipc.Code
	}{
		{"no registration", "", ipc.CodeBadRequest},
		{"an unknown registration", "reg-nope", ipc.CodeNotFound},
	} {
		if err := alice.SetDefault(ctx, "alice", tc.registration); !isCode(err, tc.code) {
			t.Errorf("default to %s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if err := alice.SetDefault(ctx, "alice", regs[2]); err != nil {
		t.Fatal(err)
	}
	list, err = alice.Registrations(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list.Registrations {
		if r.Default != (r.ID == regs[2]) {
			t.Errorf("registration %s default = %v after choosing %s", r.ID, r.Default, regs[2])
		}
	}
}

// TestRequirements: what the policy still asks of a user with one smart
// card, in numbers and in the words sign-in shows, for self-service and
// administrator-run setups; sign-in refuses with registration_required and
// the same numbers until the policy is met.
func TestRequirements(t *testing.T) {
	const how = "register them with hwauthctl register, then sign in again"
	const howOne = "register it with hwauthctl register, then sign in again"
	for _, tc := range []struct {
		name    string
		policy  func(*config.Policy)
		count   int
		oneOf   []string
		message string // after "you need "
	}{
		{"met", func(p *config.Policy) { p.RequiredCount = 1 }, 0, nil, ""},
		{"one more", func(p *config.Policy) { p.RequiredCount = 2 }, 1, nil,
			"one more smart card, virtual smart card or security key, so " + howOne},
		{"two more", func(p *config.Policy) { p.RequiredCount = 3 }, 2, nil,
			"two more smart cards, virtual smart cards or security keys, so " + how},
		{"a kind", func(p *config.Policy) {
			p.RequiredKinds = []string{ipc.KindVirtualSmartcard, ipc.KindSecurityKey}
		}, 1, []string{ipc.KindVirtualSmartcard, ipc.KindSecurityKey},
			"a virtual smart card or security key, so " + howOne},
		{"two more, one of a kind, through IT", func(p *config.Policy) {
			p.RequiredCount, p.RequiredKinds, p.SelfService = 3, []string{ipc.KindVirtualSmartcard}, false
		}, 2, []string{ipc.KindVirtualSmartcard},
			"two more smart cards, virtual smart cards or security keys, one of them a virtual smart card, so ask your administrator to register it for you"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := daemontest.New(t, func(c *config.Config) { tc.policy(&c.Policy) })
			h.AddUser("alice")
			root, ctx := h.Client("root"), context.Background()
			card := h.Insert(daemontest.CardOptions{Label: "alice's"})
			if _, err := root.Register(ctx, "alice", ipc.RegisterRequest{Authenticator: card.ID(), PIN: ipc.Secret(daemontest.PIN)}); err != nil {
				t.Fatal(err)
			}
			req, err := h.Client("alice").Requirements(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			want := ""
			if tc.message != "" {
				want = "You haven't set up the security info required by your organization: you need " + tc.message + "."
			}
			if req.User != "alice" || req.Registered != 1 || req.MissingCount != tc.count || req.Satisfied != (tc.count == 0) ||
				!slices.Equal(req.MissingOneOf, tc.oneOf) || req.Message != want {
				t.Fatalf("requirements: %+v\nwant missing %d of %v, message %q", req, tc.count, tc.oneOf, want)
			}

			_, err = root.SignIn(ctx, ipc.SignInRequest{User: "alice", PIN: ipc.Secret(daemontest.PIN)})
			if tc.count == 0 {
				if err != nil {
					t.Fatalf("sign-in with the policy met: %v", err)
				}
				return
			}
			var e *ipc.Error
			if !errors.As(err, &e) || e.Code != ipc.CodeRegistrationRequired || e.Message != want {
				t.Fatalf("sign-in: %v, want registration_required %q", err, want)
			}
			if n, ok := e.Details["missing_count"].(float64); !ok || int(n) != tc.count {
				t.Errorf("registration_required details: %v", e.Details)
			}
		})
	}
	h := daemontest.New(t)
	if _, err := h.Client("root").Requirements(context.Background(), "ghost"); !isCode(err, ipc.CodeNotFound) {
		t.Errorf("requirements of an account that does not exist: %v", err)
	}
}

// TestSessionRoutes: signing out of an unknown session or opening one is
// not_found; ?forget must be true or false; sign-out with forget ends the
// session and answers what was deleted.
func TestSessionRoutes(t *testing.T) {
	h := daemontest.New(t, func(c *config.Config) { c.SignIn.CachePIN = true })
	h.AddUser("alice")
	root, ctx := h.Client("root"), context.Background()
	card := h.Insert(daemontest.CardOptions{Label: "alice's"})
	if _, err := root.Register(ctx, "alice", ipc.RegisterRequest{Authenticator: card.ID(), PIN: ipc.Secret(daemontest.PIN)}); err != nil {
		t.Fatal(err)
	}
	s, err := root.SignIn(ctx, ipc.SignInRequest{User: "alice", PIN: ipc.Secret(daemontest.PIN)})
	if err != nil {
		t.Fatal(err)
	}
	if err := root.SignOut(ctx, "sess-nope"); !isCode(err, ipc.CodeNotFound) {
		t.Errorf("sign out of an unknown session: %v", err)
	}
	if _, err := root.OpenSession(ctx, "sess-nope", ipc.OpenSessionRequest{LoginSession: "c1"}); !isCode(err, ipc.CodeNotFound) {
		t.Errorf("open an unknown session: %v", err)
	}
	req, err := http.NewRequest("DELETE", "http://hwauthd/v1/sessions/"+s.ID+"?forget=maybe", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.HTTP("root").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("forget=maybe: HTTP %d", resp.StatusCode)
	}
	forgot, err := root.SignOutAndForget(ctx, s.ID)
	if err != nil || forgot.User != "alice" || !slices.Contains(forgot.Forgotten, ipc.ForgottenCachedPIN) {
		t.Fatalf("sign out and forget: %+v %v", forgot, err)
	}
	if list, err := root.Sessions(ctx); err != nil || len(list) != 0 {
		t.Errorf("sessions after sign-out: %+v %v", list, err)
	}
	if forgot, err := h.Client("alice").Forget(ctx, "alice"); err != nil || len(forgot.Forgotten) != 0 {
		t.Errorf("forget again: %+v %v", forgot, err)
	}
}
