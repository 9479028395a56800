package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// TestPAMSignIn runs pam_hwauth.so in a real PAM stack (pamtester under
// pam_wrapper) against the daemon, pcscd and the emulated card.
func TestPAMSignIn(t *testing.T) {
	// The PINs typed below must reach the card: a failure limit above them.
	h := start(t, func(c *config.Config) { c.SignIn.MaxFailures = 20 })
	env := testenv.PAM(t)
	so := testenv.PAMModule(t)
	env.WriteService(t, "hwtest",
		"auth required "+so+" socket="+h.socket+" timeout=1",
		"session optional "+so+" socket="+h.socket)
	pam := func(pin string, ops ...string) (string, error) {
		return env.Run(ctxT(t), "hwtest", "root", pin+"\n", ops...)
	}

	c := h.insert(0, pivcard.Options{Label: "Root card"})
	h.register(c, "root")

	// The registered card is not in the reader: the person is asked to
	// insert it; after the short wait, Enter alone chooses the password.
	h.remove(c)
	out, err := pam("")
	if err == nil || !strings.Contains(out, "Insert your smart card") || !strings.Contains(out, "press Enter for your password") ||
		!strings.Contains(out, "cannot retrieve authentication info") {
		t.Fatalf("no card: %v\n%s", err, out)
	}
	h.reinsert(c)

	out, err = pam(pivcard.DefaultPIN, "authenticate", "open_session", "close_session")
	if err != nil || !strings.Contains(out, "successfully authenticated") {
		t.Fatalf("right PIN: %v\n%s", err, out)
	}
	if !strings.Contains(out, "PIN for Root card") {
		t.Errorf("the prompt does not name the card:\n%s", out)
	}
	h.waitFor("sign-out by close_session", func(e ipc.Event) bool {
		return e.Type == ipc.EventSessionEnded && e.User == "root" && e.Reason == "sign-out"
	})

	// A wrong PIN says how many tries are left; the last one blocks the PIN
	// and the module then says how to unblock it.
	for _, want := range []string{"2 tries left", "1 try left"} {
		out, err = pam("999999")
		if err == nil || !strings.Contains(out, "Wrong PIN") || !strings.Contains(out, want) {
			t.Fatalf("wrong PIN, want %q: %v\n%s", want, err, out)
		}
	}
	// The try that blocks already says so, and who can help.
	if out, err = pam("999999"); err == nil || !strings.Contains(out, "Your PIN is blocked: ask your administrator") {
		t.Fatalf("third wrong PIN: %v\n%s", err, out)
	}
	out, err = pam(pivcard.DefaultPIN)
	if err == nil || !strings.Contains(out, "Your PIN is blocked: ask your administrator") {
		t.Fatalf("blocked PIN: %v\n%s", err, out)
	}

	// Another card that is not registered to the user.
	h.remove(c)
	h.insert(1, pivcard.Options{Label: "Someone else"})
	out, err = pam(pivcard.DefaultPIN)
	if err == nil || !strings.Contains(out, "not registered") {
		t.Fatalf("unregistered card: %v\n%s", err, out)
	}
}

// TestPAMRegistrationRequired: under a policy that requires security info,
// a user without it is told so in one sentence of the seed's words and the
// stack goes on to the password (authentication info unavailable), without
// asking for a PIN.
func TestPAMRegistrationRequired(t *testing.T) {
	h := start(t, func(c *config.Config) { c.Policy.RequireRegistration = true })
	h.insert(0, pivcard.Options{})
	env := testenv.PAM(t)
	env.WriteService(t, "hwtest", "auth required "+testenv.PAMModule(t)+" socket="+h.socket+" timeout=1")
	out, err := env.Run(ctxT(t), "hwtest", "root", "123456\n")
	if err == nil || !strings.Contains(out, "You haven't set up the security info required by your organization: you need one more smart card, virtual smart card or security key, so register it with hwauthctl register, then sign in again.") ||
		!strings.Contains(out, "cannot retrieve authentication info") || strings.Contains(out, "PIN for") {
		t.Fatalf("registration required: %v\n%s", err, out)
	}
}

// TestPAMAuthenticateOnly: an application that only authenticates (a screen
// locker: no open_session, no close_session) leaves no hwauthd session
// behind; one that opens the session keeps it, opened with the
// application's process so that the removal policy can find its login
// session.
func TestPAMAuthenticateOnly(t *testing.T) {
	h := start(t, func(c *config.Config) { c.SignIn.OpenTimeout = config.Duration{Duration: time.Second} })
	env := testenv.PAM(t)
	so := testenv.PAMModule(t)
	env.WriteService(t, "hwtest",
		"auth required "+so+" socket="+h.socket+" timeout=1",
		"session optional "+so+" socket="+h.socket)
	c := h.insert(0, pivcard.Options{})
	h.register(c, "root")

	out, err := env.Run(ctxT(t), "hwtest", "root", pivcard.DefaultPIN+"\n", "authenticate")
	if err != nil {
		t.Fatalf("authenticate: %v\n%s", err, out)
	}
	started := h.waitFor("session-started", func(e ipc.Event) bool { return e.Type == ipc.EventSessionStarted && e.User == "root" })
	ended := h.waitFor("session-ended", func(e ipc.Event) bool { return e.Type == ipc.EventSessionEnded && e.Session == started.Session })
	if ended.Reason != "not-opened" {
		t.Fatalf("authenticate-only session ended with %q", ended.Reason)
	}

	out, err = env.Run(ctxT(t), "hwtest", "root", pivcard.DefaultPIN+"\n", "authenticate", "open_session")
	if err != nil {
		t.Fatalf("authenticate, open_session: %v\n%s", err, out)
	}
	started = h.waitFor("session-started", func(e ipc.Event) bool { return e.Type == ipc.EventSessionStarted && e.User == "root" })
	sessions, err := h.c.Sessions(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(sessions, func(s ipc.Session) bool { return s.ID == started.Session })
	if i < 0 || sessions[i].Pending || sessions[i].LoginPID <= 1 || !sessions[i].ExpiresAt.After(time.Now().Add(time.Hour)) {
		t.Fatalf("opened session: %+v", sessions)
	}
}
