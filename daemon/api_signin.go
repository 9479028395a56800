package daemon

import (
	"context"
	"net/http"
	"strings"

	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// postSignIn signs a user in with a present authenticator registered to them:
// the PIN is verified on it and it proves possession of the registered key by
// signing a fresh challenge; where trust anchors and mapping rules are
// configured the certificate must also pass them. Nothing is tried on the card
// when the caller or the user is over the failure limit.
func (d *Daemon) postSignIn(w http.ResponseWriter, r *http.Request) error {
	var req ipc.SignInRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	peer, _ := server.PeerFromContext(r.Context())
	if _, err := d.account(req.User); err != nil {
		return err
	}
	if err := requireSecret("pin", req.PIN); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.API.RequestTimeout.Duration)
	defer cancel()
	res, err := d.signIn.SignIn(ctx, req.User, req.Authenticator, req.PIN)
	if err != nil {
		d.log.Info("sign-in failed", "user", req.User, "caller_uid", peer.UID, "err", err)
		return err
	}
	s, err := d.signIn.StartSession(r.Context(), res, req.PIN, req.Pending)
	if err != nil {
		return err
	}
	reg := res.Registration
	d.log.Info("signed in", "user", req.User, "authenticator", reg.AuthenticatorID, "session", s.ID, "caller_uid", peer.UID)
	d.manager.Publish(ipc.Event{Type: ipc.EventSessionStarted, User: s.User, Session: s.ID, Authenticator: s.Authenticator, Reader: res.Device.Info().Reader})
	return server.WriteJSON(w, http.StatusOK, ipc.SignInResponse{Session: sessionToAPI(s)})
}

// getSessions lists the sessions the caller may see: sign-in services and
// admins every user's (narrowed by ?user=), others their own.
func (d *Daemon) getSessions(w http.ResponseWriter, r *http.Request) error {
	c := d.callerOf(r)
	user := r.URL.Query().Get("user")
	if !c.seesEveryUser() {
		user = c.name
	}
	match := func(s signin.Session) bool { return user == "" || s.User == user }
	if !c.seesEveryUser() && c.name == "" {
		match = func(signin.Session) bool { return false }
	}
	list := d.sessions.List(match)
	resp := ipc.SessionsResponse{Sessions: make([]ipc.Session, len(list))}
	for i, s := range list {
		resp.Sessions[i] = sessionToAPI(s)
	}
	return server.WriteJSON(w, http.StatusOK, resp)
}

// deleteSession signs out: the session ends and its cached PIN is zeroed.
// The card holds no security status to reset: every operation of the daemon
// already ends by dropping it. With ?forget=true it is the Lync seed's "sign
// out and delete my sign-in information": the user's remembered sign-in
// information goes too, and the answer says what was deleted.
func (d *Daemon) deleteSession(w http.ResponseWriter, r *http.Request) error {
	forget, err := boolQuery(r, "forget")
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	s, ok := d.sessions.Get(id)
	if !ok {
		return ipc.Errorf(ipc.CodeNotFound, "no session %q", id)
	}
	if !forget {
		if !d.sessions.End(id, signin.EndSignOut) {
			return ipc.Errorf(ipc.CodeNotFound, "no session %q", id)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	// Forget first, so that the answer names this session's cached PIN too.
	resp, err := d.forget(r.Context(), s.User)
	if err != nil {
		return err
	}
	d.sessions.End(id, signin.EndForgotten)
	return server.WriteJSON(w, http.StatusOK, resp)
}

// postSessionOpen opens a pending session (the PAM session phase after a
// PAM sign-in) for the full session lifetime and records the login session
// it belongs to, which the removal policy locks or ends.
func (d *Daemon) postSessionOpen(w http.ResponseWriter, r *http.Request) error {
	var req ipc.OpenSessionRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.PID < 0 || len(req.LoginSession) > 64 || strings.ContainsFunc(req.LoginSession, func(c rune) bool { return c <= ' ' || c == '/' || c > '~' }) {
		return ipc.Errorf(ipc.CodeBadRequest, "login_session must be a logind session id and pid a process id")
	}
	id := r.PathValue("id")
	s, ok := d.sessions.Open(id, d.cfg.SignIn.SessionLifetime.Duration, signin.Login{Session: req.LoginSession, PID: req.PID})
	if !ok {
		return ipc.Errorf(ipc.CodeNotFound, "no session %q", id)
	}
	d.log.Info("session opened", "user", s.User, "session", s.ID, "login_session", s.Login.Session, "login_pid", s.Login.PID)
	return server.WriteJSON(w, http.StatusOK, ipc.SignInResponse{Session: sessionToAPI(s)})
}

// sessionToAPI is the API's form of a sign-in session.
func sessionToAPI(s signin.Session) ipc.Session {
	return ipc.Session{ID: s.ID, User: s.User, Authenticator: s.Authenticator, StartedAt: s.StartedAt, ExpiresAt: s.ExpiresAt,
		Pending: s.Pending, LoginSession: s.Login.Session, LoginPID: s.Login.PID}
}

// boolQuery reads an optional true/false query parameter.
func boolQuery(r *http.Request, name string) (bool, error) {
	switch v := r.URL.Query().Get(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, ipc.Errorf(ipc.CodeBadRequest, "%s must be true or false, got %q", name, v)
	}
}

// postForget deletes what hwauthd remembers for the user ("Delete my sign-in
// information", R8). Registrations stay.
func (d *Daemon) postForget(w http.ResponseWriter, r *http.Request) error {
	name, err := d.account(r.PathValue("user"))
	if err != nil {
		return err
	}
	resp, err := d.forget(r.Context(), name)
	if err != nil {
		return err
	}
	return server.WriteJSON(w, http.StatusOK, resp)
}

// forget deletes exactly the sign-in information hwauthd remembers for a
// user: the authenticator they signed in with last (which sign-in offers
// first) and the PINs cached in their sessions (signin.cache_pin). The
// answer names what existed and is now gone.
func (d *Daemon) forget(ctx context.Context, name string) (ipc.ForgetResponse, error) {
	forgotten, err := d.signIn.Forget(ctx, name)
	if err != nil {
		return ipc.ForgetResponse{}, err
	}
	d.log.Info("sign-in information forgotten", "user", name, "forgotten", forgotten)
	return ipc.ForgetResponse{User: name, Forgotten: forgotten}, nil
}
