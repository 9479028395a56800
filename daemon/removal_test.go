package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon/daemontest"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/logind/logindtest"
)

// TestRemovalPolicy (Windows' smart card removal policy): pulling the card
// a session was opened with keeps the session ("none"), ends it
// ("sign-out"), has logind lock the login session ("lock", session-locked)
// or end it ("logout", the session ends as logged-out); a logind refusal is
// announced as removal-failed, and under "logout" the session ends anyway.
// The events are read by resuming the event stream from its start.
func TestRemovalPolicy(t *testing.T) {
	refused := errors.New("access denied by polkit")
	for _, tc := range []struct {
		policy       string
		logindErr    error
		loginSession string // "" signs in without opening a login session
		wantCalls    []string
		wantEvent    string // the event that ends the wait
		wantReason   string
		sessionStays bool
	}{
		{policy: "none", loginSession: "c1", wantEvent: ipc.EventCardRemoved, sessionStays: true},
		{policy: "sign-out", loginSession: "c1", wantEvent: ipc.EventSessionEnded, wantReason: "authenticator-removed"},
		{policy: "lock", loginSession: "c1", wantCalls: []string{"lock c1"}, wantEvent: ipc.EventSessionLocked, sessionStays: true},
		{policy: "lock", logindErr: refused, loginSession: "c1", wantCalls: []string{"lock c1"}, wantEvent: ipc.EventRemovalFailed, wantReason: refused.Error(), sessionStays: true},
		{policy: "logout", loginSession: "c1", wantCalls: []string{"terminate c1"}, wantEvent: ipc.EventSessionEnded, wantReason: "logged-out"},
		{policy: "logout", logindErr: refused, loginSession: "c1", wantCalls: []string{"terminate c1"}, wantEvent: ipc.EventSessionEnded, wantReason: "authenticator-removed"},
		{policy: "logout", wantEvent: ipc.EventSessionEnded, wantReason: "authenticator-removed"},
	} {
		name := tc.policy
		if tc.logindErr != nil {
			name += " refused"
		}
		if tc.loginSession == "" {
			name += " without login session"
		}
		t.Run(name, func(t *testing.T) {
			login := &logindtest.Recorder{Err: tc.logindErr}
			h := daemontest.NewWith(t, daemontest.Fakes{LoginSessions: login}, func(c *config.Config) { c.SignIn.RemovalPolicy = tc.policy })
			// The removal policy asks logind with the uid the daemon's
			// account database (the harness's) gives alice. root signs
			// her in, as PAM does.
			alice := h.AddUser("alice")
			root, ctx := h.Client("root"), context.Background()
			card := h.Insert(daemontest.CardOptions{Label: "alice's card"})
			if _, err := root.Register(ctx, "alice", ipc.RegisterRequest{Authenticator: card.ID(), PIN: ipc.Secret(daemontest.PIN)}); err != nil {
				t.Fatal(err)
			}
			s, err := root.SignIn(ctx, ipc.SignInRequest{User: "alice", PIN: ipc.Secret(daemontest.PIN), Pending: tc.loginSession != ""})
			if err != nil {
				t.Fatal(err)
			}
			if tc.loginSession != "" {
				if _, err := root.OpenSession(ctx, s.ID, ipc.OpenSessionRequest{LoginSession: "bad/id"}); !isCode(err, ipc.CodeBadRequest) {
					t.Fatalf("open with a bad login session id: %v", err)
				}
				opened, err := root.OpenSession(ctx, s.ID, ipc.OpenSessionRequest{LoginSession: tc.loginSession})
				if err != nil || opened.LoginSession != tc.loginSession || opened.Pending {
					t.Fatalf("open: %+v %v", opened, err)
				}
			}
			h.Remove(card)

			wait, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			events, err := root.Events(wait, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer events.Close()
			var got ipc.Event
			for got.Type != tc.wantEvent {
				if got, err = events.Next(); err != nil {
					t.Fatalf("waiting for %s: %v", tc.wantEvent, err)
				}
				if got.Type == ipc.EventRemovalFailed && tc.wantEvent != ipc.EventRemovalFailed && tc.logindErr == nil {
					t.Fatalf("unexpected removal-failed: %+v", got)
				}
			}
			if got.Reason != tc.wantReason || (got.Type != ipc.EventCardRemoved && got.Session != s.ID) {
				t.Errorf("%s event: %+v, want reason %q for session %s", got.Type, got, tc.wantReason, s.ID)
			}
			if got.Type == ipc.EventSessionLocked || got.Type == ipc.EventRemovalFailed {
				var data map[string]string
				if err := json.Unmarshal(got.Data, &data); err != nil || data["login_session"] != tc.loginSession {
					t.Errorf("%s data: %s %v", got.Type, got.Data, err)
				}
			}

			var want []string
			for _, c := range tc.wantCalls {
				want = append(want, fmt.Sprintf("%s %d", c, alice.UID))
			}
			if calls := login.Calls(); !slices.Equal(calls, want) {
				t.Errorf("logind was asked %q, want %q", calls, want)
			}
			sessions, err := root.Sessions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if stays := len(sessions) == 1 && sessions[0].ID == s.ID; stays != tc.sessionStays {
				t.Errorf("sessions after removal: %+v, want the session kept = %v", sessions, tc.sessionStays)
			}
		})
	}
}
