package signin

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/client"
	"github.com/hwauthd/hwauthd/pam/internal/fakeapi"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newFake(t *testing.T) (*fakeapi.Daemon, *client.Client) {
	f := fakeapi.Start(t)
	return f, client.New(f.Socket)
}

func module(c *client.Client, cv *conv, insert time.Duration) *Module {
	o := DefaultOptions()
	o.InsertTimeout = insert
	o.RequestTimeout = 10 * time.Second
	return &Module{Client: c, Conv: cv, Opts: o}
}

// setup gives alice a registered card "piv-1" (PIN 123456), present.
func setup(t *testing.T) (*fakeapi.Daemon, *client.Client, ipc.Authenticator) {
	f, c := newFake(t)
	card := f.Card("piv-1", "PIV card", "123456")
	f.Register("alice", card, "Work card", true)
	f.Insert(card)
	return f, c, card
}

func TestRightPIN(t *testing.T) {
	f, c, _ := setup(t)
	cv := &conv{answers: [][]byte{[]byte("123456")}}
	out := module(c, cv, time.Second).Authenticate(testCtx(t), "alice")
	if out.Result != Success || out.Session == nil || out.Session.User != "alice" || out.Authenticator != "piv-1" {
		t.Fatalf("outcome %+v", out)
	}
	if !slices.Equal(cv.prompts, []string{"PIN for Work card: "}) {
		t.Fatalf("prompts %q", cv.prompts)
	}
	if !bytes.Equal(cv.given[0], make([]byte, 6)) {
		t.Fatal("the PIN buffer was not cleared")
	}
	if len(cv.shown) != 0 || f.SignIns() != 1 {
		t.Fatalf("shown %q, sign-ins %d", cv.shown, f.SignIns())
	}
}

// TestWrongPIN: one try is spent, never retried by the module, and the tries
// left are shown.
func TestWrongPIN(t *testing.T) {
	f, c, _ := setup(t)
	cv := &conv{answers: [][]byte{[]byte("000000"), []byte("123456")}}
	out := module(c, cv, time.Second).Authenticate(testCtx(t), "alice")
	if out.Result != AuthErr || out.Reason != string(ipc.CodePINIncorrect) {
		t.Fatalf("outcome %+v", out)
	}
	if !slices.Equal(cv.shown, []string{"error: Wrong PIN, 2 tries left."}) {
		t.Fatalf("shown %q", cv.shown)
	}
	if len(cv.prompts) != 1 || f.SignIns() != 1 {
		t.Fatalf("prompted %d times, %d sign-ins: the module retried", len(cv.prompts), f.SignIns())
	}
	cv = &conv{answers: [][]byte{[]byte("000001")}}
	module(c, cv, time.Second).Authenticate(testCtx(t), "alice")
	if !slices.Equal(cv.shown, []string{"error: Wrong PIN, 1 try left."}) {
		t.Fatalf("second wrong PIN shown %q", cv.shown)
	}
}

func TestBlockedPIN(t *testing.T) {
	f, c, card := setup(t)
	for range 3 {
		module(c, &conv{answers: [][]byte{[]byte("999999")}}, time.Second).Authenticate(testCtx(t), "alice")
	}
	cv := &conv{answers: [][]byte{[]byte("123456")}}
	out := module(c, cv, time.Second).Authenticate(testCtx(t), "alice")
	if out.Result != AuthErr || out.Reason != string(ipc.CodePINBlocked) {
		t.Fatalf("outcome %+v", out)
	}
	if !slices.Equal(cv.shown, []string{"error: Your PIN is blocked: ask your administrator to unblock it."}) {
		t.Fatalf("shown %q", cv.shown)
	}
	// When the listing already says blocked, no PIN is asked for, and the
	// advice follows the daemon's policy: here the user's own PUK.
	f.SetSelfServiceUnblock(true)
	f.SetBlocked(card.ID)
	before := f.SignIns()
	cv = &conv{answers: [][]byte{[]byte("123456")}}
	out = module(c, cv, time.Second).Authenticate(testCtx(t), "alice")
	if out.Result != AuthErr || len(cv.prompts) != 0 || f.SignIns() != before {
		t.Fatalf("blocked in listing: %+v, prompts %q, sign-ins %d→%d", out, cv.prompts, before, f.SignIns())
	}
	if len(cv.shown) != 1 || !strings.Contains(cv.shown[0], "unblock it with your PUK (hwauthctl pin unblock piv-1)") {
		t.Fatalf("shown %q", cv.shown)
	}
}

// TestUnregisteredCard: another card is inserted; the module says so without
// asking for its PIN.
func TestUnregisteredCard(t *testing.T) {
	f, c := newFake(t)
	mine := f.Card("piv-1", "PIV card", "123456")
	f.Register("alice", mine, "Work card", true)
	f.Insert(f.Card("piv-2", "Someone's card", "111111"))
	cv := &conv{answers: [][]byte{[]byte("111111")}}
	out := module(c, cv, time.Second).Authenticate(testCtx(t), "alice")
	if out.Result != AuthErr || out.Authenticator != "piv-2" || len(cv.prompts) != 0 || f.SignIns() != 0 {
		t.Fatalf("outcome %+v, prompts %q, sign-ins %d", out, cv.prompts, f.SignIns())
	}
	if !slices.Equal(cv.shown, []string{"error: This card is not registered to alice."}) {
		t.Fatalf("shown %q", cv.shown)
	}
}

// TestNoCardWaitThenAsk: the person is asked to insert a card; after the
// short wait the module asks "insert your card and press Enter, or press
// Enter for your password". Enter alone goes on to the password (the next
// module); a card inserted before Enter is used; an application that cannot
// ask goes on to the password too; timeout=0 asks at once.
func TestNoCardWaitThenAsk(t *testing.T) {
	f, c := newFake(t)
	card := f.Card("piv-1", "PIV card", "123456")
	f.Register("alice", card, "Work card", true)
	cv := &conv{answers: [][]byte{[]byte("")}}
	start := time.Now()
	out := module(c, cv, 300*time.Millisecond).Authenticate(testCtx(t), "alice")
	if out.Result != AuthInfoUnavail || out.Reason != "no card: the password was chosen" {
		t.Fatalf("outcome %+v", out)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Fatalf("asked after %v", d)
	}
	if want := []string{"info: " + msgInsert, "prompt: " + msgInsertOrEnter}; !slices.Equal(cv.shown, want) {
		t.Fatalf("shown %q, want %q", cv.shown, want)
	}
	// A PIN typed at the (echoed) prompt by mistake is dropped and zeroed.
	cv = &conv{answers: [][]byte{[]byte("123456")}}
	if out := module(c, cv, 0).Authenticate(testCtx(t), "alice"); out.Result != AuthInfoUnavail || f.SignIns() != 0 {
		t.Fatalf("timeout=0: %+v, %d sign-ins", out, f.SignIns())
	}
	if !slices.Equal(cv.shown, []string{"prompt: " + msgInsertOrEnter}) || !bytes.Equal(cv.given[0], make([]byte, 6)) {
		t.Fatalf("timeout=0: shown %q, answer kept %q", cv.shown, cv.given[0])
	}
	cv = &conv{}
	if out := module(c, cv, 0).Authenticate(testCtx(t), "alice"); out.Result != AuthInfoUnavail || !strings.Contains(out.Reason, "cannot ask") {
		t.Fatalf("no conversation: %+v", out)
	}
	// The card comes while the prompt waits for Enter, then the PIN.
	cv = &conv{answers: [][]byte{[]byte(""), []byte("123456")}, onEcho: func() { f.Insert(card) }}
	out = module(c, cv, 0).Authenticate(testCtx(t), "alice")
	if out.Result != Success || out.Authenticator != "piv-1" {
		t.Fatalf("card inserted at the prompt: %+v, shown %q", out, cv.shown)
	}
}

// TestRegistrationRequired: a user who has not registered what the policy
// requires is told so in the daemon's words, and the stack goes on to the
// password.
func TestRegistrationRequired(t *testing.T) {
	f, c, _ := setup(t)
	f.SetRequiredCount(2)
	cv := &conv{answers: [][]byte{[]byte("123456")}}
	out := module(c, cv, time.Second).Authenticate(testCtx(t), "alice")
	if out.Result != AuthInfoUnavail || out.Reason != string(ipc.CodeRegistrationRequired) || len(cv.prompts) != 0 || f.SignIns() != 0 {
		t.Fatalf("outcome %+v, prompts %q", out, cv.prompts)
	}
	if len(cv.shown) != 1 || !strings.HasPrefix(cv.shown[0], "error: You haven't set up the security info required by your organization") {
		t.Fatalf("shown %q", cv.shown)
	}
}

// TestInsertDuringWait: the card comes after the prompt to insert it; the
// module sees it through the event stream and signs in.
func TestInsertDuringWait(t *testing.T) {
	for _, name := range []string{"registered", "someone else's"} {
		t.Run(name, func(t *testing.T) {
			f, c := newFake(t)
			mine := f.Card("piv-1", "PIV card", "123456")
			f.Register("alice", mine, "Work card", true)
			card := mine
			if name != "registered" {
				card = f.Card("piv-2", "Other", "111111")
			}
			infos := make(chan string, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				select {
				case <-infos:
					f.Insert(card)
				case <-time.After(10 * time.Second):
				}
			}()
			cv := &conv{answers: [][]byte{[]byte("123456")}, infos: infos}
			start := time.Now()
			out := module(c, cv, 10*time.Second).Authenticate(testCtx(t), "alice")
			<-done
			// The card ends the wait: the person is not kept waiting for
			// the rest of it.
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("the wait went on for %v after the card came", d)
			}
			wantRes, wantAuth := Success, "piv-1"
			if name != "registered" {
				wantRes, wantAuth = AuthErr, "piv-2"
			}
			if out.Result != wantRes || out.Authenticator != wantAuth {
				t.Fatalf("outcome %+v, shown %q", out, cv.shown)
			}
		})
	}
}

// TestDefaultPreferred: with two of the user's cards present, the default one
// is used.
func TestDefaultPreferred(t *testing.T) {
	f, c := newFake(t)
	a := f.Card("piv-a", "A", "1111")
	b := f.Card("piv-b", "B", "2222")
	f.Register("alice", a, "", false)
	f.Register("alice", b, "", true)
	f.Insert(a)
	f.Insert(b)
	cv := &conv{answers: [][]byte{[]byte("2222")}}
	out := module(c, cv, time.Second).Authenticate(testCtx(t), "alice")
	if out.Result != Success || out.Authenticator != "piv-b" || cv.prompts[0] != "PIN for B: " {
		t.Fatalf("outcome %+v, prompts %q", out, cv.prompts)
	}
}

// TestLastUsedOfferedFirst: the card the user signed in with last is offered
// before the default (remembered sign-in information).
func TestLastUsedOfferedFirst(t *testing.T) {
	f, c := newFake(t)
	a := f.Card("piv-a", "A", "1111")
	b := f.Card("piv-b", "B", "2222")
	f.Register("alice", a, "", false)
	f.Register("alice", b, "", true)
	f.Insert(a)
	f.Insert(b)
	regs, err := c.Registrations(testCtx(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := pick(f.Present(), regs); !ok || got.ID != "piv-b" {
		t.Fatalf("nothing remembered: picked %+v", got)
	}
	regs.LastAuthenticator = "piv-a"
	if got, ok := pick(f.Present(), regs); !ok || got.ID != "piv-a" {
		t.Fatalf("piv-a remembered: picked %+v", got)
	}
	regs.LastAuthenticator = "piv-gone"
	if got, ok := pick(f.Present(), regs); !ok || got.ID != "piv-b" {
		t.Fatalf("an absent card remembered: picked %+v", got)
	}
	// A sign-in that names piv-a makes it the one offered next time.
	out := (&Module{Client: c, Conv: &conv{answers: [][]byte{[]byte("1111")}}, Opts: DefaultOptions()}).signIn(testCtx(t), "alice", choice{Authenticator: a, label: "A"})
	if out.Result != Success {
		t.Fatalf("sign-in with A: %+v", out)
	}
	cv := &conv{answers: [][]byte{[]byte("1111")}}
	out = module(c, cv, time.Second).Authenticate(testCtx(t), "alice")
	if out.Result != Success || out.Authenticator != "piv-a" || cv.prompts[0] != "PIN for A: " {
		t.Fatalf("outcome %+v, prompts %q", out, cv.prompts)
	}
}

func TestOtherOutcomes(t *testing.T) {
	f, c, _ := setup(t)
	cases := []struct {
		name   string
		user   string
		client *client.Client
		conv   *conv
		want   Result
		shown  string
	}{
		{"unknown user", fakeapi.UnknownUser, c, &conv{}, UserUnknown, ""},
		{"empty user", "", c, &conv{}, UserUnknown, ""},
		{"no registrations", "bob", c, &conv{}, AuthInfoUnavail, "No smart card or security key is registered for bob, so sign in with your password."},
		{"daemon down", "alice", client.New(filepath.Join(t.TempDir(), "none.sock")), &conv{}, AuthInfoUnavail, msgUnreachable},
		{"empty PIN", "alice", c, &conv{answers: [][]byte{{}}}, AuthErr, "No PIN was entered."},
		{"conversation fails", "alice", c, &conv{failWith: errors.New("no tty")}, ConvErr, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.SignIns()
			out := module(tc.client, tc.conv, time.Second).Authenticate(testCtx(t), tc.user)
			if out.Result != tc.want {
				t.Fatalf("result %v (%s), want %v", out.Result, out.Reason, tc.want)
			}
			if tc.shown != "" && (len(tc.conv.shown) != 1 || !strings.Contains(tc.conv.shown[0], tc.shown)) {
				t.Fatalf("shown %q, want %q", tc.conv.shown, tc.shown)
			}
			if f.SignIns() != before {
				t.Fatal("sign-in was called")
			}
		})
	}
}

// TestClassify covers the codes the fake daemon does not produce.
func TestClassify(t *testing.T) {
	two := 2
	cases := []struct {
		err  error
		want Result
		msg  string
	}{
		{&ipc.Error{Code: ipc.CodePINIncorrect, RetriesLeft: hwerr.TriesLeft(two)}, AuthErr, "Wrong PIN, 2 tries left."},
		{&ipc.Error{Code: ipc.CodePINIncorrect}, AuthErr, "Wrong PIN."},
		{ipc.Errorf(ipc.CodeIdentityMismatch, "x"), AuthErr, "This card is not registered to alice."},
		{ipc.Errorf(ipc.CodeRegistrationRequired, "Set up your security info first."), AuthInfoUnavail, "Set up your security info first."},
		{ipc.Errorf(ipc.CodeBackendUnavailable, "pcscd is not running"), AuthInfoUnavail, "pcscd is not running"},
		{ipc.Errorf(ipc.CodeUnauthorized, "only root"), AuthInfoUnavail, "only root"},
		{ipc.Errorf(ipc.CodeAuthenticatorRemoved, "card removed"), AuthErr, "card removed"},
		{context.DeadlineExceeded, AuthInfoUnavail, msgNoAnswer},
		{errors.New("broken pipe"), AuthInfoUnavail, msgUnreachable},
	}
	for _, tc := range cases {
		res, reason, msg := classify(tc.err, "alice")
		if res != tc.want || msg != tc.msg || reason == "" {
			t.Errorf("classify(%v) = %v %q %q, want %v %q", tc.err, res, reason, msg, tc.want, tc.msg)
		}
	}
}

func TestResultString(t *testing.T) {
	if Success.String() != "PAM_SUCCESS" || AuthInfoUnavail.String() != "PAM_AUTHINFO_UNAVAIL" || Result(99).String() != "Result(99)" {
		t.Fatal(Success, AuthInfoUnavail, Result(99))
	}
}
