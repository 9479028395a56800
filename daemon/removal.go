package daemon

import (
	"context"
	"encoding/json"
	"os/user"
	"strconv"
	"sync"

	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/logind"
)

// LoginSessions locks and ends systemd-logind sessions for the removal
// policies "lock" and "logout" (package logind; a fake in tests). Each
// method returns the session's id and logind's refusal, if any.
type LoginSessions interface {
	Lock(ctx context.Context, t logind.Target) (string, error)
	Terminate(ctx context.Context, t logind.Target) (string, error)
}

// removals runs the logind calls of the removal policy in their own
// goroutines, and lets shutdown wait for them and refuse new ones.
type removals struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// run starts fn unless shutdown has begun.
func (r *removals) run(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.wg.Go(fn)
	}
}

// close refuses new calls and waits for those under way.
func (r *removals) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.wg.Wait()
}

// authenticatorGone applies the removal policy to the sessions opened with
// an authenticator that was removed (Windows' smart card removal policy):
// "none" keeps them, "sign-out" ends them (reason authenticator-removed),
// "lock" has logind lock their login sessions and "logout" has logind end
// them (reason logged-out). Sessions that go on lose their cached PIN
// either way. logind is asked off the caller's goroutine (the backend's
// event loop); a refusal is logged and announced (removal-failed).
func (d *Daemon) authenticatorGone(id string) {
	d.blocks.Forget(id)
	onIt := func(s ipc.Session) bool { return s.Authenticator == id }
	switch d.cfg.SignIn.RemovalPolicy {
	case "sign-out":
		d.sessions.EndWhere(onIt, signin.EndRemoved)
		return
	case "lock", "logout":
		for _, s := range d.sessions.List(onIt) {
			d.removals.run(func() { d.removeLogin(s, d.cfg.SignIn.RemovalPolicy) })
		}
	}
	d.sessions.DropPINsWhere(onIt)
}

// removeLogin locks or ends (action "lock" or "logout") the login session
// of s. Under "logout" the hwauthd session ends too, also when logind
// refuses or no login session is known: the card that opened it is gone.
func (d *Daemon) removeLogin(s ipc.Session, action string) {
	if s.LoginSession == "" && s.LoginPID == 0 {
		d.log.Info("card removed from a sign-in without a login session", "session", s.ID, "user", s.User, "removal_policy", action)
		if action == "logout" {
			d.sessions.End(s.ID, signin.EndRemoved)
		}
		return
	}
	t := logind.Target{ID: s.LoginSession, PID: s.LoginPID}
	u, err := user.Lookup(s.User)
	if err == nil {
		var uid uint64
		uid, err = strconv.ParseUint(u.Uid, 10, 32)
		t.UID = uint32(uid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.API.RequestTimeout.Duration)
	defer cancel()
	var sid string
	if err == nil {
		if action == "lock" {
			sid, err = d.login.Lock(ctx, t)
		} else {
			sid, err = d.login.Terminate(ctx, t)
		}
	}
	if sid == "" {
		sid = s.LoginSession
	}
	if err != nil {
		d.log.Warn("removal policy: logind refused", "action", action, "session", s.ID, "user", s.User, "login_session", sid, "login_pid", s.LoginPID, "err", err)
		data, _ := json.Marshal(map[string]string{"action": action, "login_session": sid})
		d.manager.Publish(ipc.Event{Type: ipc.EventRemovalFailed, User: s.User, Session: s.ID, Authenticator: s.Authenticator, Reason: err.Error(), Data: data})
		if action == "logout" {
			d.sessions.End(s.ID, signin.EndRemoved)
		}
		return
	}
	if action == "logout" {
		d.log.Info("removal policy: login session ended", "session", s.ID, "user", s.User, "login_session", sid)
		d.sessions.End(s.ID, signin.EndLoggedOut)
		return
	}
	d.log.Info("removal policy: login session locked", "session", s.ID, "user", s.User, "login_session", sid)
	data, _ := json.Marshal(map[string]string{"login_session": sid})
	d.manager.Publish(ipc.Event{Type: ipc.EventSessionLocked, User: s.User, Session: s.ID, Authenticator: s.Authenticator, Data: data})
}
