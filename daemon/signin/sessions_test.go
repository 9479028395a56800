package signin

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/hwerr"
)

// endedLog collects the sessions a table ends, as "id reason".
type endedLog chan string

func (l endedLog) onEnd(s Session, reason string) { l <- s.ID + " " + reason }

// next waits for the next ended session.
func (l endedLog) next(t *testing.T) string {
	t.Helper()
	select {
	case got := <-l:
		return got
	case <-time.After(5 * time.Second):
		t.Fatal("no session ended")
		return ""
	}
}

// TestPendingSessionOpens: a pending session that is not opened in time
// ends as not-opened; one that is opened lasts its new lifetime and records
// the login session; an unknown id does not open.
func TestPendingSessionOpens(t *testing.T) {
	ended := make(endedLog, 4)
	tab := NewSessions(ended.onEnd)
	late, err := tab.Start("alice", "piv-1", 10*time.Millisecond, nil, true)
	if err != nil || !late.Pending {
		t.Fatalf("start pending: %+v, %v", late, err)
	}
	if got := ended.next(t); got != late.ID+" "+EndNotOpened {
		t.Fatalf("ended %q, want %s not-opened", got, late.ID)
	}
	if _, ok := tab.Open(late.ID, time.Hour, Login{}); ok {
		t.Fatal("a session that ended opened")
	}

	s, err := tab.Start("alice", "piv-1", 10*time.Millisecond, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	opened, ok := tab.Open(s.ID, time.Hour, Login{Session: "c7", PID: 4242})
	if !ok || opened.Pending || opened.Login != (Login{Session: "c7", PID: 4242}) || opened.ExpiresAt.Before(s.StartedAt.Add(59*time.Minute)) {
		t.Fatalf("opened %+v, %v", opened, ok)
	}
	if got, ok := tab.Get(s.ID); !ok || got != opened {
		t.Fatalf("Get = %+v, %v, want %+v", got, ok, opened)
	}
	// The pending lifetime's timer no longer ends it.
	if !tab.End(s.ID, EndSignOut) {
		t.Fatal("the opened session did not outlive its pending lifetime")
	}
	if got := ended.next(t); got != s.ID+" "+EndSignOut {
		t.Fatalf("ended %q", got)
	}
	if _, ok := tab.Get(s.ID); ok {
		t.Fatal("an ended session is still there")
	}
}

// TestSessionsSelectAndClose: List and EndWhere select by a predicate,
// oldest first; DropPINsWhere zeroes only the selected sessions' PINs;
// Close ends every session without announcing it, and no session starts
// after it.
func TestSessionsSelectAndClose(t *testing.T) {
	ended := make(endedLog, 8)
	tab := NewSessions(ended.onEnd)
	var ids []string
	for _, u := range []string{"alice", "bob", "alice", "carol"} {
		s, err := tab.Start(u, "piv-"+u, time.Hour, []byte("pin-"+u), false)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	user := func(name string) func(Session) bool { return func(s Session) bool { return s.User == name } }
	alice := tab.List(user("alice"))
	if len(alice) != 2 || !slices.IsSortedFunc(tab.List(nil), func(a, b Session) int { return a.StartedAt.Compare(b.StartedAt) }) {
		t.Fatalf("alice's sessions %+v", alice)
	}
	if got := len(tab.List(nil)); got != 4 {
		t.Fatalf("%d sessions listed, want 4", got)
	}
	tab.mu.Lock()
	bobPIN := tab.byID[ids[1]].pin
	tab.mu.Unlock()
	if n := tab.DropPINsWhere(user("bob")); n != 1 || tab.CachedPIN("bob", "piv-bob") != nil {
		t.Fatalf("dropped %d PINs, bob's still cached: %q", n, tab.CachedPIN("bob", "piv-bob"))
	}
	if string(bobPIN) != "\x00\x00\x00\x00\x00\x00\x00" {
		t.Errorf("bob's dropped PIN is %q, not zeroed", bobPIN)
	}
	if string(tab.CachedPIN("alice", "piv-alice")) != "pin-alice" {
		t.Error("alice's PIN went with bob's")
	}

	tab.EndWhere(user("alice"), EndRemoved)
	got := []string{ended.next(t), ended.next(t)}
	slices.Sort(got)
	want := []string{ids[0] + " " + EndRemoved, ids[2] + " " + EndRemoved}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ended %q, want %q", got, want)
	}

	tab.mu.Lock()
	carolPIN := tab.byID[ids[3]].pin
	tab.mu.Unlock()
	closed := tab.Close()
	oldestFirst := func(a, b Session) int { return cmp.Or(a.StartedAt.Compare(b.StartedAt), cmp.Compare(a.ID, b.ID)) }
	if !slices.IsSortedFunc(closed, oldestFirst) {
		t.Errorf("Close returned %+v, not oldest first", closed)
	}
	var closedIDs []string
	for _, s := range closed {
		closedIDs = append(closedIDs, s.ID)
	}
	slices.Sort(closedIDs)
	want = []string{ids[1], ids[3]}
	slices.Sort(want)
	if !slices.Equal(closedIDs, want) {
		t.Fatalf("Close ended %q, want bob's and carol's sessions %q", closedIDs, want)
	}
	for _, b := range carolPIN {
		if b != 0 {
			t.Fatal("Close left a cached PIN")
		}
	}
	select {
	case got := <-ended:
		t.Fatalf("Close announced %q itself", got)
	default:
	}
	if _, err := tab.Start("alice", "piv-alice", time.Hour, nil, false); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("start after Close: %v, want ErrShuttingDown", err)
	}
	if len(tab.List(nil)) != 0 {
		t.Fatal("sessions after Close")
	}
}

// TestLimiterDo: an attempt over the limit never runs; its outcome is
// recorded otherwise.
func TestLimiterDo(t *testing.T) {
	l := NewLimiter(2, time.Minute)
	k := Key{Authenticator: "piv-1", User: "alice", Secret: SecretPIN}
	runs := 0
	wrong := func() error { runs++; return &MismatchError{Reason: "not alice's"} }
	for range 2 {
		wantError[*MismatchError](t, l.Do(k, wrong))
	}
	e := wantError[*TooManyAttemptsError](t, l.Do(k, wrong))
	if runs != 2 || e.Key != k || e.RetryAfter < time.Second || e.RetryAfter > time.Minute {
		t.Fatalf("after %d runs: %+v", runs, e)
	}
	if e.Error() != "too many failed attempts with this PIN on piv-1 for alice; try again in "+e.RetryAfter.String() {
		t.Errorf("message %q", e.Error())
	}
}

// TestClassifyFailure: what counts against the limit, and when the
// device's own counter spoke.
func TestClassifyFailure(t *testing.T) {
	for _, tc := range []struct {
		err            error
		counts, device bool
	}{
		{&hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(2)}, true, true},
		{&hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(-1)}, true, false},
		{hwerr.ErrPINBlocked, true, true},
		{&MismatchError{Reason: "x"}, true, false},
		{&CertificateError{Reason: "x"}, true, false},
		{fmt.Errorf("sign in: %w", &PINBlockedError{Authenticator: "piv-1"}), true, true},
		{&NotRegisteredError{Authenticator: "piv-1"}, true, false},
		{ErrNoAuthenticator, false, false},
		{&KeyNotFoundError{Authenticator: "piv-1", Key: "9d"}, false, false},
		{&TooManyAttemptsError{}, false, false},
		{hwerr.ErrRemoved, false, false},
		{errors.New("reader gone"), false, false},
	} {
		counts, device := classifyFailure(tc.err)
		if counts != tc.counts || device != tc.device {
			t.Errorf("classifyFailure(%v) = %v, %v, want %v, %v", tc.err, counts, device, tc.counts, tc.device)
		}
	}
}
