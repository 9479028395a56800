package signin

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/logind"
)

// Removal policies (signin.removal_policy), after Windows' smart card
// removal policy: what pulling the authenticator a session was opened with
// does to the session.
const (
	RemovalNone    = "none"     // the session goes on
	RemovalSignOut = "sign-out" // the session ends (authenticator-removed)
	RemovalLock    = "lock"     // logind locks the login session
	RemovalLogout  = "logout"   // logind ends the login session, and the session ends
)

// LoginSessions locks and ends systemd-logind sessions for the removal
// policies "lock" and "logout" (package logind; a fake in tests). Each
// method returns the session's id and logind's refusal, if any.
type LoginSessions interface {
	Lock(ctx context.Context, t logind.Target) (string, error)
	Terminate(ctx context.Context, t logind.Target) (string, error)
}

// Removal applies the removal policy to the sessions opened with an
// authenticator that was removed. Sessions that go on lose their cached
// PIN either way. logind is asked off the caller's goroutine (a backend's
// event loop), each call bounded by Timeout; Close waits for the calls
// under way and refuses new ones.
type Removal struct {
	Policy   string // one of the Removal… constants
	Sessions *Sessions
	Login    LoginSessions
	// Accounts gives the uid of a session's user, which logind checks the
	// login session against.
	Accounts UserIDs
	Timeout  time.Duration
	Log      *slog.Logger
	// Locked, when set, is told that logind locked the login session
	// (its id) of s.
	Locked func(s Session, loginSession string)
	// Failed, when set, is told that logind refused action ("lock" or
	// "logout") on the login session (its id) of s.
	Failed func(s Session, action, loginSession string, err error)

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// AuthenticatorGone applies the policy to the sessions opened with
// authenticator id: "none" keeps them, "sign-out" ends them (reason
// authenticator-removed), "lock" has logind lock their login sessions and
// "logout" has logind end them (reason logged-out).
func (r *Removal) AuthenticatorGone(id string) {
	onIt := func(s Session) bool { return s.Authenticator == id }
	switch r.Policy {
	case RemovalSignOut:
		r.Sessions.EndWhere(onIt, EndRemoved)
		return
	case RemovalLock, RemovalLogout:
		for _, s := range r.Sessions.List(onIt) {
			r.run(func() { r.removeLogin(s) })
		}
	}
	r.Sessions.DropPINsWhere(onIt)
}

// Close refuses new logind calls and waits for those under way.
func (r *Removal) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.wg.Wait()
}

// run starts fn unless Close was called.
func (r *Removal) run(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.wg.Go(fn)
	}
}

// removeLogin locks or ends, by the policy, the login session of s. Under
// "logout" the sign-in session ends too, also when logind refuses or no
// login session is known: the authenticator that opened it is gone.
func (r *Removal) removeLogin(s Session) {
	action := r.Policy
	if !s.Login.Known() {
		r.Log.Info("card removed from a sign-in without a login session", "session", s.ID, "user", s.User, "removal_policy", action)
		if action == RemovalLogout {
			r.Sessions.End(s.ID, EndRemoved)
		}
		return
	}
	sid, err := r.callLogind(s)
	if sid == "" {
		sid = s.Login.Session
	}
	switch {
	case err != nil:
		r.Log.Warn("removal policy: logind refused", "action", action, "session", s.ID, "user", s.User, "login_session", sid, "login_pid", s.Login.PID, "err", err)
		if r.Failed != nil {
			r.Failed(s, action, sid, err)
		}
		if action == RemovalLogout {
			r.Sessions.End(s.ID, EndRemoved)
		}
	case action == RemovalLogout:
		r.Log.Info("removal policy: login session ended", "session", s.ID, "user", s.User, "login_session", sid)
		r.Sessions.End(s.ID, EndLoggedOut)
	default:
		r.Log.Info("removal policy: login session locked", "session", s.ID, "user", s.User, "login_session", sid)
		if r.Locked != nil {
			r.Locked(s, sid)
		}
	}
}

// callLogind asks logind to lock or end the login session of s, which must
// belong to s's user.
func (r *Removal) callLogind(s Session) (string, error) {
	uid, ok := r.Accounts.UserID(s.User)
	if !ok {
		return "", fmt.Errorf("no account %q in the account database", s.User)
	}
	t := logind.Target{ID: s.Login.Session, PID: s.Login.PID, UID: uid}
	ctx, cancel := context.WithTimeout(context.Background(), r.Timeout)
	defer cancel()
	if r.Policy == RemovalLock {
		return r.Login.Lock(ctx, t)
	}
	return r.Login.Terminate(ctx, t)
}
