package signin

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/logind/logindtest"
)

// TestRemoval: each policy on a session opened with the removed
// authenticator (with a login session, or without, or of a user the account
// database does not know), with what logind is asked, what the daemon is
// told and how the session ends. Another authenticator's session is never
// touched, and sessions that go on lose their cached PIN.
func TestRemoval(t *testing.T) {
	refused := errors.New("access denied by polkit")
	for _, tc := range []struct {
		name, policy string
		user         string
		login        Login
		logindErr    error
		wantCalls    []string
		wantEnded    string // reason, "" when the session goes on
		wantLocked   bool
		wantFailed   string // the error told, "" when none
	}{
		{name: "none", policy: RemovalNone, user: "alice", login: Login{Session: "c1"}},
		{name: "sign-out", policy: RemovalSignOut, user: "alice", login: Login{Session: "c1"}, wantEnded: EndRemoved},
		{name: "lock", policy: RemovalLock, user: "alice", login: Login{Session: "c1"}, wantCalls: []string{"lock c1 1001"}, wantLocked: true},
		{name: "lock by pid", policy: RemovalLock, user: "bob", login: Login{PID: 42}, wantCalls: []string{"lock  1002"}, wantLocked: true},
		{name: "lock refused", policy: RemovalLock, user: "alice", login: Login{Session: "c1"}, logindErr: refused, wantCalls: []string{"lock c1 1001"}, wantFailed: refused.Error()},
		{name: "lock without login session", policy: RemovalLock, user: "alice"},
		{name: "lock of an unknown account", policy: RemovalLock, user: "mallory", login: Login{Session: "c1"}, wantFailed: `no account "mallory" in the account database`},
		{name: "logout", policy: RemovalLogout, user: "alice", login: Login{Session: "c1"}, wantCalls: []string{"terminate c1 1001"}, wantEnded: EndLoggedOut},
		{name: "logout refused", policy: RemovalLogout, user: "alice", login: Login{Session: "c1"}, logindErr: refused, wantCalls: []string{"terminate c1 1001"}, wantEnded: EndRemoved, wantFailed: refused.Error()},
		{name: "logout without login session", policy: RemovalLogout, user: "alice", wantEnded: EndRemoved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ended := make(endedLog, 4)
			tab := NewSessions(ended.onEnd)
			defer tab.Close()
			s, err := tab.Start(tc.user, "piv-1", time.Hour, []byte("123456"), tc.login.Known())
			if err != nil {
				t.Fatal(err)
			}
			if tc.login.Known() {
				tab.Open(s.ID, time.Hour, tc.login)
			}
			other, _ := tab.Start(tc.user, "piv-2", time.Hour, []byte("654321"), false)
			login := &logindtest.Recorder{Err: tc.logindErr}
			var mu sync.Mutex
			var locked, failed []string
			r := &Removal{Policy: tc.policy, Sessions: tab, Login: login, Accounts: uidAccounts{"alice": 1001, "bob": 1002},
				Timeout: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Locked: func(got Session, sid string) {
					mu.Lock()
					defer mu.Unlock()
					locked = append(locked, got.ID+" "+sid)
				},
				Failed: func(got Session, action, sid string, err error) {
					mu.Lock()
					defer mu.Unlock()
					failed = append(failed, err.Error())
					if got.ID != s.ID || action != tc.policy || sid != tc.login.Session {
						t.Errorf("failed: %+v %s %s", got, action, sid)
					}
				},
			}
			r.AuthenticatorGone("piv-1")
			r.Close() // waits for the logind calls

			if tc.wantEnded != "" {
				if got := ended.next(t); got != s.ID+" "+tc.wantEnded {
					t.Errorf("ended %q, want %s %s", got, s.ID, tc.wantEnded)
				}
			} else if _, ok := tab.Get(s.ID); !ok {
				t.Error("the session ended")
			} else if pin := tab.CachedPIN(tc.user, "piv-1"); pin != nil {
				t.Error("a session that goes on keeps its cached PIN")
			}
			if _, ok := tab.Get(other.ID); !ok || tab.CachedPIN(tc.user, "piv-2") == nil {
				t.Error("the session of another authenticator was touched")
			}
			if calls := login.Calls(); !slices.Equal(calls, tc.wantCalls) {
				t.Errorf("logind was asked %q, want %q", calls, tc.wantCalls)
			}
			mu.Lock()
			defer mu.Unlock()
			if wantLocked := []string{s.ID + " " + tc.login.Session}; tc.wantLocked != slices.Equal(locked, wantLocked) || !tc.wantLocked && locked != nil {
				t.Errorf("locked %q, want locked = %v", locked, tc.wantLocked)
			}
			if (tc.wantFailed == "") != (failed == nil) || tc.wantFailed != "" && (len(failed) != 1 || failed[0] != tc.wantFailed) {
				t.Errorf("failed %q, want %q", failed, tc.wantFailed)
			}
		})
	}
}

// TestRemovalAfterClose: once closed, the removal policy asks logind
// nothing more (shutdown ends the sessions itself).
func TestRemovalAfterClose(t *testing.T) {
	tab := NewSessions(func(Session, string) {})
	defer tab.Close()
	s, _ := tab.Start("alice", "piv-1", time.Hour, nil, true)
	tab.Open(s.ID, time.Hour, Login{Session: "c1"})
	login := &logindtest.Recorder{}
	r := &Removal{Policy: RemovalLogout, Sessions: tab, Login: login, Accounts: uidAccounts{"alice": 1001}, Timeout: time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r.Close()
	r.AuthenticatorGone("piv-1")
	if calls := login.Calls(); len(calls) != 0 {
		t.Errorf("logind asked after Close: %q", calls)
	}
	if _, ok := tab.Get(s.ID); !ok {
		t.Error("the session ended without the removal policy")
	}
}
