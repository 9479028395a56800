package pam

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/pam/internal/fakeapi"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// stack is the PAM stack of one test: a service "hwtest" whose auth and
// session lines load the module with args against the fake API.
func stack(t *testing.T, f *fakeapi.Daemon, args ...string) *testenv.PAMEnv {
	env := testenv.PAM(t)
	line := strings.Join(append([]string{testenv.PAMModule(t), "socket=" + f.Socket}, args...), " ")
	env.WriteService(t, "hwtest", "auth required "+line, "session optional "+line)
	return env
}

// aliceWithCard registers a present card (PIN 123456) to alice.
func aliceWithCard(t *testing.T) *fakeapi.Daemon {
	f := fakeapi.Start(t)
	card := f.Card("piv-1", "PIV card", "123456")
	f.Register("alice", card, "Work card", true)
	f.Insert(card)
	return f
}

func wantFailure(t *testing.T, out string, err error, contains ...string) {
	t.Helper()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("pamtester did not fail: %v\n%s", err, out)
	}
	for _, c := range contains {
		if !strings.Contains(out, c) {
			t.Fatalf("output lacks %q:\n%s", c, out)
		}
	}
}

// TestRightPIN signs in, opens and closes the session: close_session signs
// out of the hwauthd session kept with pam_set_data.
func TestRightPIN(t *testing.T) {
	f := aliceWithCard(t)
	env := stack(t, f, "timeout=1")
	out, err := env.Run(testCtx(t), "hwtest", "alice", "123456\n", "authenticate", "open_session", "close_session")
	if err != nil || !strings.Contains(out, "successfully authenticated") || !strings.Contains(out, "session has successfully been closed") {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "PIN for Work card:") || strings.Contains(out, "123456") {
		t.Fatalf("prompt missing or PIN echoed:\n%s", out)
	}
	if got := f.SignOuts(); !slices.Equal(got, []string{"s1"}) {
		t.Fatalf("signed out %q, want [s1]", got)
	}
}

func TestWrongPINShowsTriesLeft(t *testing.T) {
	f := aliceWithCard(t)
	env := stack(t, f, "timeout=1")
	out, err := env.Run(testCtx(t), "hwtest", "alice", "654321\n")
	wantFailure(t, out, err, "Wrong PIN. 2 tries left.", "Authentication failure")
	if strings.Contains(out, "654321") || f.SignIns() != 1 {
		t.Fatalf("PIN echoed or retried (%d sign-ins):\n%s", f.SignIns(), out)
	}
}

func TestBlockedPINSaysHowToUnblock(t *testing.T) {
	f := aliceWithCard(t)
	env := stack(t, f, "timeout=1")
	for range fakeapi.Tries {
		env.Run(testCtx(t), "hwtest", "alice", "000000\n")
	}
	out, err := env.Run(testCtx(t), "hwtest", "alice", "123456\n")
	wantFailure(t, out, err, "Your PIN is blocked", "hwauthctl pin unblock")
}

func TestUnregisteredCard(t *testing.T) {
	f := fakeapi.Start(t)
	f.Register("alice", f.Card("piv-1", "PIV card", "123456"), "Work card", true)
	f.Insert(f.Card("piv-2", "Other card", "111111"))
	env := stack(t, f, "timeout=1")
	out, err := env.Run(testCtx(t), "hwtest", "alice", "111111\n")
	wantFailure(t, out, err, "This card is not registered to alice.")
	if strings.Contains(out, "PIN for") || f.SignIns() != 0 {
		t.Fatalf("asked for the PIN of a foreign card:\n%s", out)
	}
}

func TestNoCardTimesOut(t *testing.T) {
	f := fakeapi.Start(t)
	f.Register("alice", f.Card("piv-1", "PIV card", "123456"), "Work card", true)
	env := stack(t, f, "timeout=1")
	start := time.Now()
	out, err := env.Run(testCtx(t), "hwtest", "alice", "")
	wantFailure(t, out, err, "Insert your smart card or security key", "within 1 second", "cannot retrieve authentication info")
	if d := time.Since(start); d < time.Second {
		t.Fatalf("gave up after %v, before the timeout", d)
	}
}

// TestConfigurationErrors: a bad argument is a service error, an absent
// daemon is "authentication info unavailable" (a sufficient line falls
// through to the next method).
func TestConfigurationErrors(t *testing.T) {
	env := testenv.PAM(t)
	so := testenv.PAMModule(t)
	env.WriteService(t, "typo", "auth required "+so+" sockt=/x")
	env.WriteService(t, "down", "auth required "+so+" socket="+filepath.Join(t.TempDir(), "none.sock"))
	out, err := env.Run(testCtx(t), "typo", "alice", "")
	wantFailure(t, out, err, "Error in service module")
	out, err = env.Run(testCtx(t), "down", "alice", "")
	wantFailure(t, out, err, "hwauthd) is not running", "cannot retrieve authentication info")
}
