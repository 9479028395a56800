package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// signInOpen signs alice in as a PAM stack does (pending, then opened with
// the login session) and returns the session.
func (h *harness) signInOpen(open ipc.OpenSessionRequest) *ipc.Session {
	h.t.Helper()
	ctx := ctxT(h.t)
	s, err := h.c.SignIn(ctx, ipc.SignInRequest{User: alice, PIN: ipc.Secret(pivcard.DefaultPIN), Pending: true})
	if err != nil {
		h.t.Fatal(err)
	}
	if !s.Pending {
		h.t.Fatalf("a PAM sign-in is not pending: %+v", s)
	}
	opened, err := h.c.OpenSession(ctx, s.ID, open)
	if err != nil || opened.Pending || opened.LoginSession != open.LoginSession || opened.LoginPID != open.PID || !opened.ExpiresAt.After(s.ExpiresAt) {
		h.t.Fatalf("open: %+v %v", opened, err)
	}
	return opened
}

func loginSessionOf(t *testing.T, e ipc.Event) string {
	t.Helper()
	var d struct {
		LoginSession string `json:"login_session"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatalf("event data %s: %v", e.Data, err)
	}
	return d.LoginSession
}

// TestRemovalPolicyLock: pulling the card has logind lock the login session
// opened with it (by id, and by a process in it), and nothing else; a lock
// logind refuses and a login session of another user are logged and
// announced as removal-failed, never silent. logind is python3-dbusmock's
// template on a private bus; the real logind with polkit is left to the
// system test under systemd-nspawn.
func TestRemovalPolicyLock(t *testing.T) {
	logind := testenv.Logind(t)
	logind.AddSession(t, "c1", aliceUID, alice)
	logind.AddSession(t, "c2", aliceUID, alice)
	logind.AddSession(t, "c9", malloryUID, mallory)
	logind.AddMethod(t, "GetSessionByPID", "u", "o", `ret = "/org/freedesktop/login1/session/c2" if args[0] == 4242 else None`)
	h := start(t, func(c *config.Config) { c.SignIn.RemovalPolicy = "lock" })
	c := h.insert(0, pivcard.Options{})
	h.register(c, alice)

	for _, tc := range []struct {
		open ipc.OpenSessionRequest
		want string
	}{{ipc.OpenSessionRequest{LoginSession: "c1"}, "c1"}, {ipc.OpenSessionRequest{PID: 4242}, "c2"}} {
		s := h.signInOpen(tc.open)
		h.remove(c)
		e := h.waitFor("session-locked", func(e ipc.Event) bool { return e.Type == ipc.EventSessionLocked && e.Session == s.ID })
		if got := loginSessionOf(t, e); got != tc.want {
			t.Fatalf("locked %q, want %q", got, tc.want)
		}
		if !strings.Contains(logind.Log(t), `LockSession "`+tc.want+`"`) {
			t.Fatalf("logind was not asked to lock %s:\n%s", tc.want, logind.Log(t))
		}
		// The hwauthd session goes on (the screen locker signs in again).
		if _, err := h.c.OpenSession(ctxT(t), s.ID, tc.open); err != nil {
			t.Fatalf("session after lock: %v", err)
		}
		h.reinsert(c)
	}

	// A session of another user is never locked for alice's card.
	s := h.signInOpen(ipc.OpenSessionRequest{LoginSession: "c9"})
	h.remove(c)
	e := h.waitFor("removal-failed", func(e ipc.Event) bool { return e.Type == ipc.EventRemovalFailed && e.Session == s.ID })
	if !strings.Contains(e.Reason, "belongs to another user") || strings.Contains(logind.Log(t), `LockSession "c9"`) {
		t.Fatalf("another user's session: %+v\n%s", e, logind.Log(t))
	}
	h.reinsert(c)

	// logind refuses (as without the polkit rule): logged and announced.
	logind.AddMethod(t, "LockSession", "s", "", `raise dbus.exceptions.DBusException("Interactive authentication required.", name="org.freedesktop.DBus.Error.InteractiveAuthorizationRequired")`)
	s = h.signInOpen(ipc.OpenSessionRequest{LoginSession: "c1"})
	h.remove(c)
	e = h.waitFor("removal-failed", func(e ipc.Event) bool { return e.Type == ipc.EventRemovalFailed && e.Session == s.ID })
	if !strings.Contains(e.Reason, "Interactive authentication required") || loginSessionOf(t, e) != "c1" {
		t.Fatalf("refused lock: %+v", e)
	}
}

// TestRemovalPolicyLogout: pulling the card has logind end the login
// session, and hwauthd's session ends with reason logged-out; a sign-in
// without a login session (authenticate only) ends as authenticator-removed.
func TestRemovalPolicyLogout(t *testing.T) {
	logind := testenv.Logind(t)
	logind.AddSession(t, "c1", aliceUID, alice)
	h := start(t, func(c *config.Config) { c.SignIn.RemovalPolicy = "logout" })
	c := h.insert(0, pivcard.Options{})
	h.register(c, alice)
	s := h.signInOpen(ipc.OpenSessionRequest{LoginSession: "c1"})
	plain, err := h.signIn(alice, pivcard.DefaultPIN)
	if err != nil {
		t.Fatal(err)
	}
	h.remove(c)
	want := map[string]string{s.ID: "logged-out", plain.ID: "authenticator-removed"}
	got := map[string]string{}
	for len(got) < len(want) {
		e := h.waitFor("session-ended", func(e ipc.Event) bool { return e.Type == ipc.EventSessionEnded && want[e.Session] != "" })
		got[e.Session] = e.Reason
	}
	for id, reason := range want {
		if got[id] != reason {
			t.Fatalf("session %s ended with %q, want %q", id, got[id], reason)
		}
	}
	if !strings.Contains(logind.Log(t), `TerminateSession "c1"`) {
		t.Fatalf("logind was not asked to end c1:\n%s", logind.Log(t))
	}
}

// TestPendingSessionEnds: a PAM sign-in that is never opened (an application
// that only authenticates) leaves no session behind.
func TestPendingSessionEnds(t *testing.T) {
	h := start(t, func(c *config.Config) { c.SignIn.OpenTimeout = config.Duration{Duration: 1e9} })
	c := h.insert(0, pivcard.Options{})
	h.register(c, alice)
	s, err := h.c.SignIn(ctxT(t), ipc.SignInRequest{User: alice, PIN: ipc.Secret(pivcard.DefaultPIN), Pending: true})
	if err != nil {
		t.Fatal(err)
	}
	e := h.waitFor("session-ended", func(e ipc.Event) bool { return e.Type == ipc.EventSessionEnded && e.Session == s.ID })
	if e.Reason != "not-opened" {
		t.Fatalf("reason %q", e.Reason)
	}
	if _, err := h.c.OpenSession(ctxT(t), s.ID, ipc.OpenSessionRequest{PID: 1}); apiCode(err) != ipc.CodeNotFound {
		t.Fatalf("opening an ended session: %v", err)
	}
}
