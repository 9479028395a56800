package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/apitest"
	"github.com/hwauthd/hwauthd/store/boltstore"
)

func newTestDaemon(t *testing.T) *Daemon {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "hwauthd.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d, err := New(Options{Config: config.Defaults(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestEveryRouteDeclaresAccess is the route table's sanity check (snapd's
// TestCommandAccessSane is the model): every route has a typed checker
// (deny by default), the checker's path values exist in the pattern, docs/api.md
// lists the route with the checker's word in its "who" column, and nothing
// else is documented.
func TestEveryRouteDeclaresAccess(t *testing.T) {
	documented, err := apitest.DocumentedRoutes("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	d := newTestDaemon(t)
	seen := map[string]bool{}
	for _, r := range d.routeTable() {
		key := r.method + " " + r.pattern
		if r.access == nil {
			t.Errorf("%s has no access checker", key)
			continue
		}
		if r.handler == nil {
			t.Errorf("%s has no handler", key)
		}
		if !strings.HasPrefix(r.pattern, "/v1/") {
			t.Errorf("%s is outside /v1/", key)
		}
		if seen[key] {
			t.Errorf("%s is declared twice", key)
		}
		seen[key] = true
		var needs string
		switch r.access.(type) {
		case userAccess:
			needs = "{user}"
		case ownerAccess, unblockAccess, sessionAccess:
			needs = "{id}"
		case openAccess, adminAccess, sessionsAccess, signInAccess:
		default:
			t.Errorf("%s: checker %T is not one of access.go's", key, r.access)
		}
		if needs != "" && !strings.Contains(r.pattern, needs) {
			t.Errorf("%s: checker %s reads %s, which the pattern does not have", key, r.access.Who(), needs)
		}
		doc, ok := documented[key]
		switch {
		case !ok:
			t.Errorf("docs/api.md has no row for %s", key)
		case doc.Who != r.access.Who():
			t.Errorf("%s: docs/api.md says who = %q, the route table %q", key, doc.Who, r.access.Who())
		}
		delete(documented, key)
	}
	for key := range documented {
		t.Errorf("docs/api.md documents %s, which the daemon does not serve", key)
	}
}

func TestMapError(t *testing.T) {
	for _, tc := range []struct {
		err     error
		code    ipc.Code
		retries hwerr.Tries
	}{
		{fmt.Errorf("verify: %w", &hwerr.PINIncorrect{RetriesLeft: hwerr.TriesLeft(3)}), ipc.CodePINIncorrect, hwerr.TriesLeft(3)},
		{fmt.Errorf("verify: %w", hwerr.ErrPINBlocked), ipc.CodePINBlocked, hwerr.Tries{}},
		{fmt.Errorf("sign: %w", hwerr.ErrRemoved), ipc.CodeAuthenticatorRemoved, hwerr.Tries{}},
		{fmt.Errorf("list: %w", hwerr.ErrUnavailable), ipc.CodeBackendUnavailable, hwerr.Tries{}},
		{fmt.Errorf("x: %w", hwerr.ErrNotFound), ipc.CodeNotFound, hwerr.Tries{}},
		{context.DeadlineExceeded, ipc.CodeTimeout, hwerr.Tries{}},
		{ipc.Errorf(ipc.CodeLimitReached, "five"), ipc.CodeLimitReached, hwerr.Tries{}},
	} {
		got := MapError(tc.err)
		if got == nil || got.Code != tc.code {
			t.Errorf("MapError(%v) = %v, want code %s", tc.err, got, tc.code)
			continue
		}
		if got.RetriesLeft != tc.retries {
			t.Errorf("MapError(%v) retries = %v, want %v", tc.err, got.RetriesLeft, tc.retries)
		}
		if got.Code.HTTPStatus() < 400 {
			t.Errorf("%s maps to HTTP %d", got.Code, got.Code.HTTPStatus())
		}
	}
	if MapError(errors.New("something else")) != nil {
		t.Error("an unknown error must be left to the server (internal)")
	}
}

// TestMapSignInErrors: the sign-in package's typed errors, wrapped or not,
// keep the codes, words and details the API answered before they were typed.
func TestMapSignInErrors(t *testing.T) {
	k := signin.Key{Authenticator: "piv-1", User: "alice", Secret: signin.SecretPIN}
	for _, tc := range []struct {
		err  error
		code ipc.Code
		msg  string
	}{
		{signin.ErrShuttingDown, ipc.CodeBackendUnavailable, "hwauthd is shutting down; sign in again when it is back"},
		{fmt.Errorf("sign in: %w", &signin.TooManyAttemptsError{Key: k, RetryAfter: 42 * time.Second}), ipc.CodeTooManyAttempts,
			"too many failed attempts with this PIN on piv-1 for alice; try again in 42s"},
		{&signin.KeyNotFoundError{Authenticator: "piv-1", Keys: 2}, ipc.CodeBadRequest, `authenticator piv-1 has 2 keys; name one with "key"`},
		{&signin.KeyNotFoundError{Authenticator: "piv-1", Key: "9c", Keys: 2}, ipc.CodeNotFound, `authenticator piv-1 has no key "9c"`},
		{&signin.CertificateError{Reason: "the card's certificate expired"}, ipc.CodeCertificateInvalid, "the card's certificate expired"},
		{fmt.Errorf("prove: %w", &signin.MismatchError{Reason: "not alice's"}), ipc.CodeIdentityMismatch, "not alice's"},
		{signin.ErrNoAuthenticator, ipc.CodeNoAuthenticator, "insert your smart card or plug in your security key, then try again"},
		{&signin.NotRegisteredError{User: "carol"}, ipc.CodeNotRegistered,
			"No smart card, virtual smart card or security key is registered to carol; register one first (often done by IT)."},
		{&signin.NotRegisteredError{User: "carol", Authenticator: "piv-9"}, ipc.CodeNotRegistered, "authenticator piv-9 is not registered to this user"},
		{&signin.PossibleCloneError{Err: errors.New("counter 5 after 10")}, ipc.CodePossibleClone,
			"the security key's signature counter went backwards (counter 5 after 10); it may have been cloned. Contact your administrator"},
	} {
		got := MapError(tc.err)
		if got == nil || got.Code != tc.code || got.Message != tc.msg {
			t.Errorf("MapError(%v) = %+v, want code %s and message %q", tc.err, got, tc.code, tc.msg)
		}
	}
	got := MapError(&signin.TooManyAttemptsError{Key: k, RetryAfter: 42 * time.Second})
	if got.Details["retry_after_seconds"] != 42 {
		t.Errorf("too_many_attempts details = %v, want retry_after_seconds 42", got.Details)
	}
}

// TestPINBlockedAnswer: a blocked PIN answers pin_blocked with advice that
// follows policy.self_service_unblock and the kind; the try that blocks it
// announces pin-blocked once (signin.PINBlocks is tested in its package).
func TestPINBlockedAnswer(t *testing.T) {
	d := newTestDaemon(t)
	sub, err := d.manager.Subscribe(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	nextEvent := func() ipc.Event {
		t.Helper()
		select {
		case e := <-sub.C():
			return e
		default:
			return ipc.Event{}
		}
	}
	nextEvent() // snapshot-done
	card := signin.Authenticator{ID: "piv-1", Kind: ipc.KindSmartcard, Reader: "r0"}
	code := func(err error) (ipc.Code, string, any) {
		e := MapError(err)
		if e == nil {
			return "", "", nil
		}
		return e.Code, e.Message, e.Details["unblock"]
	}
	c, msg, how := code(d.signIn.PINBlocks.Outcome(fmt.Errorf("verify: %w", &hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(0)}), card))
	if c != ipc.CodePINBlocked || how != "administrator" || !strings.Contains(msg, "administrator") {
		t.Fatalf("last try: %s %q %v", c, msg, how)
	}
	if e := nextEvent(); e.Type != ipc.EventPINBlocked || e.Authenticator != "piv-1" || e.Reader != "r0" {
		t.Fatalf("last try: event %+v", e)
	}
	if e := nextEvent(); e.Type != "" {
		t.Fatalf("pin-blocked announced twice: %+v", e)
	}
	c, msg, how = code(&signin.PINBlockedError{Authenticator: "fido-1", Kind: ipc.KindSecurityKey, SelfServiceUnblock: true})
	if c != ipc.CodePINBlocked || how != "administrator" || !strings.Contains(msg, "reset") {
		t.Fatalf("security key: %s %q %v", c, msg, how)
	}
	c, msg, how = code(fmt.Errorf("sign in: %w", &signin.PINBlockedError{Authenticator: "piv-1", Kind: ipc.KindSmartcard, SelfServiceUnblock: true}))
	if c != ipc.CodePINBlocked || how != "puk" || !strings.Contains(msg, "hwauthctl pin unblock piv-1") {
		t.Fatalf("self-service unblock: %s %q %v", c, msg, how)
	}
}
