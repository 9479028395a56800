package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

func (h *harness) signIn(user, pin string) (*ipc.Session, error) {
	return h.c.SignIn(ctxT(h.t), ipc.SignInRequest{User: user, PIN: ipc.Secret(pin)})
}

func TestSignInSignOutAndSessionEvents(t *testing.T) {
	h := start(t)
	ctx := ctxT(t)
	if _, err := h.signIn(alice, pivcard.DefaultPIN); apiCode(err) != ipc.CodeNotRegistered {
		t.Fatalf("sign-in with nothing registered: %v", err)
	}
	c := h.insert(0, pivcard.Options{})
	reg := h.register(c, alice)
	s, err := h.signIn(alice, pivcard.DefaultPIN)
	if err != nil {
		t.Fatal(err)
	}
	if s.User != alice || s.Authenticator != c.id || !s.ExpiresAt.After(s.StartedAt) {
		t.Fatalf("session %+v", s)
	}
	h.waitFor("session-started", func(e ipc.Event) bool { return e.Type == ipc.EventSessionStarted && e.Session == s.ID })
	list, err := h.c.Registrations(ctx, alice)
	if err != nil || list.Registrations[0].LastUsedAt == nil {
		t.Fatalf("last use not recorded: %+v %v", list, err)
	}
	if st := cardPIN(t, c); st.Verified {
		t.Fatal("the card keeps the PIN verified after sign-in")
	}
	// A wrong PIN says how many tries are left and opens nothing.
	_, err = h.signIn(alice, "999999")
	if apiCode(err) != ipc.CodePINIncorrect || !containsRetries(err, 2) {
		t.Fatalf("wrong PIN: %v", err)
	}
	// The session outlives the connection that opened it: a new client sees it.
	sessions, err := clientFor(h).Sessions(ctx)
	if err != nil || len(sessions) != 1 || sessions[0].ID != s.ID {
		t.Fatalf("sessions: %+v %v", sessions, err)
	}
	if err := h.c.SignOut(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	e := h.waitFor("session-ended", func(e ipc.Event) bool { return e.Type == ipc.EventSessionEnded && e.Session == s.ID })
	if e.Reason != "sign-out" {
		t.Fatalf("ended with reason %q", e.Reason)
	}
	if err := h.c.SignOut(ctx, s.ID); apiCode(err) != ipc.CodeNotFound {
		t.Fatalf("second sign-out: %v", err)
	}
	// Forget deletes what is remembered (the last authenticator used).
	forgot, err := h.c.Forget(ctx, alice)
	if err != nil || len(forgot.Forgotten) == 0 || forgot.Forgotten[0] != "last_authenticator" {
		t.Fatalf("forget: %+v %v", forgot, err)
	}
	// No card present: the person is told to insert it.
	h.remove(c)
	if _, err := h.signIn(alice, pivcard.DefaultPIN); apiCode(err) != ipc.CodeNoAuthenticator {
		t.Fatalf("no card: %v", err)
	}
	// Removing the registration ends its use for sign-in.
	h.reinsert(c)
	if _, err := h.c.RemoveRegistration(ctx, alice, reg.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.signIn(alice, pivcard.DefaultPIN); apiCode(err) != ipc.CodeNotRegistered {
		t.Fatalf("after unregistering: %v", err)
	}
	// Stopping the daemon ends every session with session-ended first.
	h.register(c, alice)
	s2, err := h.signIn(alice, pivcard.DefaultPIN)
	if err != nil {
		t.Fatal(err)
	}
	h.stop()
	var reason string
	for e := range h.events {
		if e.Type == ipc.EventSessionEnded && e.Session == s2.ID {
			reason = e.Reason
		}
	}
	if reason != "shutdown" {
		t.Fatalf("daemon stop: session-ended reason %q", reason)
	}
}

func containsRetries(err error, n int) bool {
	var e *ipc.Error
	return errorsAs(err, &e) && e.RetriesLeft == hwerr.TriesLeft(n)
}

func TestRemovalPolicySignsOut(t *testing.T) {
	h := start(t, func(c *config.Config) { c.SignIn.RemovalPolicy = "sign-out" })
	c := h.insert(0, pivcard.Options{})
	h.register(c, alice)
	s, err := h.signIn(alice, pivcard.DefaultPIN)
	if err != nil {
		t.Fatal(err)
	}
	h.remove(c)
	e := h.waitFor("session-ended", func(e ipc.Event) bool { return e.Type == ipc.EventSessionEnded && e.Session == s.ID })
	if e.Reason != "authenticator-removed" {
		t.Fatalf("reason %q", e.Reason)
	}
}

func TestRequiredRegistration(t *testing.T) {
	h := start(t, func(c *config.Config) { c.Policy.RequireRegistration = true })
	h.insert(0, pivcard.Options{})
	if _, err := h.signIn(alice, pivcard.DefaultPIN); apiCode(err) != ipc.CodeRegistrationRequired {
		t.Fatalf("no registration under a policy that requires one: %v", err)
	}
}

// TestRequiredMethods: "at least two, one of them a smart card or virtual
// smart card". A setup client asks what is missing; sign-in refuses with
// registration_required and the same words until the policy is met, without
// spending a PIN try.
func TestRequiredMethods(t *testing.T) {
	h := start(t, func(c *config.Config) {
		c.Policy.RequiredCount = 2
		c.Policy.RequiredKinds = []string{"smartcard", "virtual-smartcard"}
	})
	ctx := ctxT(t)
	a := h.insert(0, pivcard.Options{})
	req, err := h.c.Requirements(ctx, alice)
	if err != nil || req.Satisfied || req.MissingCount != 2 || req.RequiredCount != 2 || len(req.MissingOneOf) != 2 ||
		req.Message != "You haven't set up the security info required by your organization: you need two more smart cards, virtual smart cards or security keys, one of them a smart card or virtual smart card, so register them with hwauthctl register, then sign in again." {
		t.Fatalf("nothing registered: %+v %v", req, err)
	}
	h.register(a, alice)
	req, err = h.c.Requirements(ctx, alice)
	if err != nil || req.Satisfied || req.MissingCount != 1 || len(req.MissingOneOf) != 0 || req.Registered != 1 {
		t.Fatalf("one card registered: %+v %v", req, err)
	}
	_, err = h.signIn(alice, "999999") // a wrong PIN: refused before the card is asked
	var apiErr *ipc.Error
	if !errorsAs(err, &apiErr) || apiErr.Code != ipc.CodeRegistrationRequired || apiErr.Message != req.Message || apiErr.Details["missing_count"] != float64(1) {
		t.Fatalf("sign-in with one of two: %#v", err)
	}
	if st := cardPIN(t, a); st.RetriesLeft != hwerr.TriesLeft(3) {
		t.Fatalf("a refused sign-in spent a PIN try: %v left", st.RetriesLeft)
	}
	// Another user may not ask about alice; alice may.
	calls := runAs(t, malloryUID, malloryUID, h.socket, []call{{Method: "GET", Path: "/v1/users/" + alice + "/requirements"}})
	if errorCode(calls[0].Answer) != "unauthorized" {
		t.Fatalf("mallory asks about alice: %+v", calls)
	}
	calls = runAs(t, aliceUID, aliceUID, h.socket, []call{{Method: "GET", Path: "/v1/users/" + alice + "/requirements"}})
	if calls[0].Status != 200 || !strings.Contains(calls[0].Answer, `"missing_count":1`) {
		t.Fatalf("alice asks: %+v", calls)
	}
	h.register(h.insert(1, pivcard.Options{}), alice)
	if req, err := h.c.Requirements(ctx, alice); err != nil || !req.Satisfied || req.Message != "" {
		t.Fatalf("two cards: %+v %v", req, err)
	}
	if _, err := h.signIn(alice, pivcard.DefaultPIN); err != nil {
		t.Fatalf("sign-in once the policy is met: %v", err)
	}
}

// TestTrustAnchorsAndMapping: the card's self-signed certificate is its own
// trust anchor in one daemon and untrusted in another; mapping rules compare
// the certificate's CN with the account or follow an admin's link.
func TestTrustAnchorsAndMapping(t *testing.T) {
	card0, err := pivcard.New(pivcard.Options{Label: alice})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	own := filepath.Join(dir, "own.pem")
	if err := os.WriteFile(own, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: card0.Certificate(piv.SlotAuthentication)}), 0o644); err != nil {
		t.Fatal(err)
	}
	other, err := pivcard.New(pivcard.Options{Label: "someone"})
	if err != nil {
		t.Fatal(err)
	}
	untrusted := filepath.Join(dir, "other.pem")
	if err := os.WriteFile(untrusted, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Certificate(piv.SlotAuthentication)}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		anchors string
		mapping []string
		link    string
		want    ipc.Code
	}{
		{"trusted and CN maps", own, []string{"cn"}, "", ""},
		{"untrusted", untrusted, nil, "", ipc.CodeCertificateInvalid},
		{"CN is another account", own, []string{"cn"}, "", ""},
		{"no rule maps", "", []string{"email", "upn"}, "", ipc.CodeIdentityMismatch},
		{"admin link", "", []string{"link"}, "cn:" + alice, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, func(c *config.Config) {
				c.SignIn.TrustAnchors = tc.anchors
				c.SignIn.Mapping = tc.mapping
			})
			c := h.insertCard(0, card0, card0)
			h.register(c, alice)
			if tc.link != "" {
				if _, err := h.c.Link(ctxT(t), alice, tc.link); err != nil {
					t.Fatal(err)
				}
			}
			before := cardPIN(t, c).RetriesLeft
			_, err := h.signIn(alice, pivcard.DefaultPIN)
			if apiCode(err) != tc.want || (tc.want == "" && err != nil) {
				t.Fatalf("sign-in: %v, want %q", err, tc.want)
			}
			if tc.want != "" && cardPIN(t, c).RetriesLeft != before {
				t.Fatal("a refused certificate still cost a PIN try")
			}
			h.remove(c)
		})
	}
}

// TestFailedSignInsAreLimited (issue 13, item 4): failures count per
// authenticator and user, never per caller, so root (PAM) failing for one
// user locks no other; and the limit never answers before the card: alice's
// wrong PINs reach her card until the card itself blocks, and her PUK
// unblocks it.
func TestFailedSignInsAreLimited(t *testing.T) {
	const bob = "bin" // uid 2
	h := start(t, func(c *config.Config) { c.SignIn.MaxFailures = 2 })
	ac := h.insert(0, pivcard.Options{PINTries: 5})
	bc := h.insert(1, pivcard.Options{})
	h.register(ac, alice)
	h.register(bc, bob)
	for left := 4; left >= 0; left-- {
		_, err := h.signIn(alice, "999999")
		want := ipc.CodePINIncorrect
		if left == 0 {
			want = ipc.CodePINBlocked
		}
		if apiCode(err) != want {
			t.Fatalf("wrong PIN with %d tries left on the card: %v, want %s", left, err, want)
		}
		if st := cardPIN(t, ac); st.RetriesLeft != hwerr.TriesLeft(left) {
			t.Fatalf("card after the wrong PIN: %+v, want %d tries left", st, left)
		}
	}
	if _, err := h.signIn(alice, pivcard.DefaultPIN); apiCode(err) != ipc.CodePINBlocked {
		t.Fatalf("blocked card: %v, want pin_blocked from the card", err)
	}
	// root's failures for alice do not lock bob out.
	if _, err := h.signIn(bob, pivcard.DefaultPIN); err != nil {
		t.Fatalf("bob's sign-in after alice's failures: %v", err)
	}
	// The PUK path is counted apart and works.
	if _, err := h.c.UnblockPIN(ctxT(t), ac.id, []byte(pivcard.DefaultPUK), []byte(pivcard.DefaultPIN)); err != nil {
		t.Fatalf("unblock with the PUK: %v", err)
	}
	if _, err := h.signIn(alice, pivcard.DefaultPIN); err != nil {
		t.Fatalf("sign-in after the unblock: %v", err)
	}
}

// TestPINCacheWithinSession: with cache_pin the user signs with no PIN while
// signed in, and needs it again after sign-out.
func TestPINCacheWithinSession(t *testing.T) {
	h := start(t, func(c *config.Config) { c.SignIn.CachePIN = true })
	c := h.insert(0, pivcard.Options{})
	h.register(c, alice)
	d := sha256.Sum256([]byte("document"))
	sign := fmt.Sprintf(`{"key": "9a", "algorithm": "ecdsa-sha256", "digest": %q}`, base64.StdEncoding.EncodeToString(d[:]))
	calls := runAs(t, aliceUID, aliceUID, h.socket, []call{
		{Method: "POST", Path: "/v1/authenticators/" + c.id + "/sign", Body: sign},
		{Method: "POST", Path: "/v1/sign-in", Body: fmt.Sprintf(`{"user": %q, "pin": %q}`, alice, pivcard.DefaultPIN)},
		{Method: "POST", Path: "/v1/authenticators/" + c.id + "/sign", Body: sign},
	})
	if errorCode(calls[0].Answer) != "pin_required" || calls[1].Status != 200 || calls[2].Status != 200 {
		t.Fatalf("before, sign-in, within: %+v", calls)
	}
	sessions, err := h.c.Sessions(ctxT(t))
	if err != nil || len(sessions) != 1 {
		t.Fatalf("sessions %+v %v", sessions, err)
	}
	// Pulling the card zeroes the cached PIN; under removal policy "none"
	// the session itself goes on.
	h.remove(c)
	h.reinsert(c)
	calls = runAs(t, aliceUID, aliceUID, h.socket, []call{
		{Method: "POST", Path: "/v1/authenticators/" + c.id + "/sign", Body: sign},
		{Method: "GET", Path: "/v1/sessions"},
	})
	if errorCode(calls[0].Answer) != "pin_required" || !strings.Contains(calls[1].Answer, sessions[0].ID) {
		t.Fatalf("after removal: %+v", calls)
	}
	calls = runAs(t, aliceUID, aliceUID, h.socket, []call{
		{Method: "DELETE", Path: "/v1/sessions/" + sessions[0].ID},
		{Method: "POST", Path: "/v1/authenticators/" + c.id + "/sign", Body: sign},
	})
	if calls[0].Status != 204 || errorCode(calls[1].Answer) != "pin_required" {
		t.Fatalf("after sign-out: %+v", calls)
	}
}

// TestRememberedSignInInformation: what hwauthd remembers for a user is the
// card they signed in with last, which sign-in then offers before the
// default, and (with cache_pin) the PIN cached in their sessions. Forget
// deletes exactly that and says so; sign-out with forget ends the session
// (reason forget) and deletes it too, and is refused for another user's
// session.
func TestRememberedSignInInformation(t *testing.T) {
	h := start(t, func(c *config.Config) { c.SignIn.CachePIN = true })
	ctx := ctxT(t)
	a := h.insert(0, pivcard.Options{})
	b := h.insert(1, pivcard.Options{})
	h.register(a, alice) // the first registration is the default
	h.register(b, alice)
	if regs, err := h.c.Registrations(ctx, alice); err != nil || regs.LastAuthenticator != "" {
		t.Fatalf("before any sign-in: %+v %v", regs, err)
	}
	s, err := h.signIn(alice, pivcard.DefaultPIN)
	if err != nil || s.Authenticator != a.id {
		t.Fatalf("nothing remembered: the default must be used: %+v %v", s, err)
	}
	s, err = h.c.SignIn(ctx, ipc.SignInRequest{User: alice, PIN: ipc.Secret(pivcard.DefaultPIN), Authenticator: b.id})
	if err != nil {
		t.Fatal(err)
	}
	if regs, err := h.c.Registrations(ctx, alice); err != nil || regs.LastAuthenticator != b.id {
		t.Fatalf("after signing in with b: %+v %v", regs, err)
	}
	s2, err := h.signIn(alice, pivcard.DefaultPIN)
	if err != nil || s2.Authenticator != b.id {
		t.Fatalf("the card used last must be offered first: %+v %v", s2, err)
	}
	forgot, err := h.c.Forget(ctx, alice)
	if err != nil || strings.Join(forgot.Forgotten, ",") != "last_authenticator,cached_pin" {
		t.Fatalf("forget: %+v %v", forgot, err)
	}
	// The cached PIN is gone: signing within the session needs the PIN again.
	d := sha256.Sum256([]byte("document"))
	sign := fmt.Sprintf(`{"key": "9a", "algorithm": "ecdsa-sha256", "digest": %q}`, base64.StdEncoding.EncodeToString(d[:]))
	calls := runAs(t, aliceUID, aliceUID, h.socket, []call{{Method: "POST", Path: "/v1/authenticators/" + b.id + "/sign", Body: sign}})
	if errorCode(calls[0].Answer) != "pin_required" {
		t.Fatalf("sign after forget: %+v", calls)
	}
	if forgot, err := h.c.Forget(ctx, alice); err != nil || len(forgot.Forgotten) != 0 {
		t.Fatalf("second forget: %+v %v", forgot, err)
	}
	s3, err := h.signIn(alice, pivcard.DefaultPIN)
	if err != nil || s3.Authenticator != a.id {
		t.Fatalf("after forget the default must be used again: %+v %v", s3, err)
	}
	// Another user cannot sign out (or forget through) alice's session.
	calls = runAs(t, malloryUID, malloryUID, h.socket, []call{{Method: "DELETE", Path: "/v1/sessions/" + s3.ID + "?forget=true"}})
	if errorCode(calls[0].Answer) != "not_found" {
		t.Fatalf("mallory signs out alice's session: %+v", calls)
	}
	calls = runAs(t, aliceUID, aliceUID, h.socket, []call{
		{Method: "DELETE", Path: "/v1/sessions/" + s3.ID + "?forget=maybe"},
		{Method: "DELETE", Path: "/v1/sessions/" + s3.ID + "?forget=true"},
	})
	if errorCode(calls[0].Answer) != "bad_request" || calls[1].Status != 200 ||
		!strings.Contains(calls[1].Answer, `"forgotten":["last_authenticator","cached_pin"]`) {
		t.Fatalf("alice signs out and forgets: %+v", calls)
	}
	e := h.waitFor("session-ended", func(e ipc.Event) bool { return e.Type == ipc.EventSessionEnded && e.Session == s3.ID })
	if e.Reason != "forget" {
		t.Fatalf("sign-out with forget ended with reason %q", e.Reason)
	}
	if regs, err := h.c.Registrations(ctx, alice); err != nil || regs.LastAuthenticator != "" {
		t.Fatalf("after sign-out with forget: %+v %v", regs, err)
	}
	for _, id := range []string{s.ID, s2.ID} {
		if err := h.c.SignOut(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSignInBlocksPIN: the sign-in that spends the last try answers
// pin_blocked with the pin-blocked event, and the advice sends the user to
// their PUK, which policy lets them use themself; later tries answer
// pin_blocked without a second event. Only the card's user (or an admin)
// may unblock it.
func TestSignInBlocksPIN(t *testing.T) {
	h := start(t, func(c *config.Config) { c.Policy.SelfServiceUnblock = true })
	c := h.insert(0, pivcard.Options{})
	h.register(c, alice)
	// A second watcher counts pin-blocked events until the card is removed.
	watch, err := h.c.Events(ctxT(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	for want := 2; want >= 1; want-- {
		if _, err := h.signIn(alice, "999999"); !containsRetries(err, want) {
			t.Fatalf("wrong PIN: %v, want %d left", err, want)
		}
	}
	_, err = h.signIn(alice, "999999")
	var apiErr *ipc.Error
	if !errorsAs(err, &apiErr) || apiErr.Code != ipc.CodePINBlocked || apiErr.Details["unblock"] != "puk" ||
		!strings.Contains(apiErr.Message, "hwauthctl pin unblock "+c.id) {
		t.Fatalf("the try that blocks: %#v", err)
	}
	h.waitFor("pin-blocked", func(e ipc.Event) bool { return e.Type == ipc.EventPINBlocked && e.Authenticator == c.id })
	if _, err := h.signIn(alice, pivcard.DefaultPIN); apiCode(err) != ipc.CodePINBlocked {
		t.Fatalf("after blocking: %v", err)
	}
	unblock := fmt.Sprintf(`{"puk": %q, "new_pin": "24680135"}`, pivcard.DefaultPUK)
	calls := runAs(t, malloryUID, malloryUID, h.socket, []call{{Method: "POST", Path: "/v1/authenticators/" + c.id + "/pin/unblock", Body: unblock}})
	if errorCode(calls[0].Answer) != "unauthorized" {
		t.Fatalf("another user unblocks alice's card: %+v", calls)
	}
	calls = runAs(t, aliceUID, aliceUID, h.socket, []call{{Method: "POST", Path: "/v1/authenticators/" + c.id + "/pin/unblock", Body: unblock}})
	if calls[0].Status != 200 {
		t.Fatalf("alice unblocks her card: %+v", calls)
	}
	// pin-blocked was sent once, for the try that blocked, not for the
	// refused try after it.
	h.remove(c)
	announced := 0
	for {
		e, err := watch.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == ipc.EventPINBlocked && e.Authenticator == c.id {
			announced++
		}
		if e.Type == ipc.EventCardRemoved && e.Authenticator == c.id {
			break
		}
	}
	if announced != 1 {
		t.Fatalf("pin-blocked announced %d times", announced)
	}
	h.reinsert(c)
	if _, err := h.signIn(alice, "24680135"); err != nil {
		t.Fatalf("sign-in with the new PIN: %v", err)
	}
}
