package daemon

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hwauthd/hwauthd/daemon/backend"
	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
	"github.com/hwauthd/hwauthd/store"
)

// Keys of remembered sign-in information (R8) in the store; "forget"
// deletes them.
const rememberLastAuthenticator = ipc.ForgottenLastAuthenticator

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
	reg, dev, counter, err := d.signIn(ctx, req)
	if err != nil {
		d.log.Info("sign-in failed", "user", req.User, "caller_uid", peer.UID, "err", err)
		return err
	}
	var cached []byte
	if d.cfg.SignIn.CachePIN {
		cached = req.PIN
	}
	lifetime := d.cfg.SignIn.SessionLifetime.Duration
	if req.Pending {
		lifetime = d.cfg.SignIn.OpenTimeout.Duration
	}
	s, err := d.sessions.Start(req.User, reg.AuthenticatorID, lifetime, cached, req.Pending)
	if err != nil {
		return err
	}
	now := time.Now()
	if err := d.store.MarkUsed(r.Context(), req.User, reg.ID, now, counter); err != nil {
		d.log.Warn("record last use", "user", req.User, "err", err)
	}
	if err := d.store.Remember(r.Context(), req.User, rememberLastAuthenticator, reg.AuthenticatorID); err != nil {
		d.log.Warn("remember last authenticator", "user", req.User, "err", err)
	}
	d.log.Info("signed in", "user", req.User, "authenticator", reg.AuthenticatorID, "session", s.ID, "caller_uid", peer.UID)
	d.manager.Publish(ipc.Event{Type: ipc.EventSessionStarted, User: s.User, Session: s.ID, Authenticator: s.Authenticator, Reader: dev.Info().Reader})
	return server.WriteJSON(w, http.StatusOK, ipc.SignInResponse{Session: s})
}

// signIn picks the authenticator and proves that the person holds it. For a
// security key it returns the key's new signature counter.
func (d *Daemon) signIn(ctx context.Context, req ipc.SignInRequest) (_ store.Registration, _ backend.Device, _ uint32, err error) {
	regs, err := d.store.Registrations(ctx, req.User)
	if err != nil {
		return store.Registration{}, nil, 0, err
	}
	if err := d.registrationRequired(req.User, regs); err != nil {
		return store.Registration{}, nil, 0, err
	}
	if len(regs) == 0 {
		return store.Registration{}, nil, 0, ipc.Errorf(ipc.CodeNotRegistered, "No smart card, virtual smart card or security key is registered to %s; register one first (often done by IT).", req.User)
	}
	if req.Authenticator != "" {
		// Naming authenticators that are not the user's spends no try, but
		// counts as a failure for the named one.
		named := signin.Key{Authenticator: req.Authenticator, User: req.User, Secret: signin.SecretPIN}
		if err := d.failures.Allow(named); err != nil {
			return store.Registration{}, nil, 0, err
		}
		defer func() {
			if e, ok := errors.AsType[*ipc.Error](err); ok && e.Code == ipc.CodeNotRegistered {
				d.failures.Record(named, err)
			}
		}()
	}
	reg, dev, err := d.pickRegistration(regs, req.Authenticator, d.lastAuthenticator(ctx, req.User))
	if err != nil {
		return reg, nil, 0, err
	}
	if !d.cfg.Policy.KindAllowed(reg.Kind) {
		return reg, nil, 0, kindNotAllowed(reg.Kind)
	}
	before := dev.Info() // the PIN state as listed, before this try
	var counter uint32
	err = d.failures.Do(signin.Key{Authenticator: reg.AuthenticatorID, User: req.User, Secret: signin.SecretPIN}, func() error {
		if sk, ok := dev.(backend.SecurityKey); ok && reg.Kind == ipc.KindSecurityKey {
			var err error
			counter, err = d.proveSecurityKey(ctx, sk, reg, req.PIN)
			return d.pinOutcome(err, before)
		}
		return d.pinOutcome(d.proveCard(ctx, dev, reg, req), before)
	})
	return reg, dev, counter, err
}

// proveCard checks a card's certificate against the trust anchors and
// mapping rules, then verifies the PIN and has the card sign a fresh
// challenge with the registered key. The certificate is checked first, so a
// card that would be refused spends no PIN try.
func (d *Daemon) proveCard(ctx context.Context, dev backend.Device, reg store.Registration, req ipc.SignInRequest) error {
	info := dev.Info()
	key, err := signin.DeviceKey(info, reg.KeyID)
	if err != nil {
		return err
	}
	cert, err := signin.KeyCertificate(key)
	if err != nil {
		return err
	}
	if d.trust != nil && cert == nil {
		return ipc.Errorf(ipc.CodeCertificateInvalid, "key %s of %s has no certificate to check against the trust anchors", key.ID, info.ID)
	}
	if err := d.trust.Check(cert, time.Now()); err != nil {
		return err
	}
	if err := signin.MapIdentity(ctx, d.store, d.accounts, d.cfg.SignIn.Mapping, cert, req.User); err != nil {
		return err
	}
	registered, err := x509.ParsePKIXPublicKey(reg.PublicKey)
	if err != nil {
		return fmt.Errorf("registration %s: stored public key: %w", reg.ID, err)
	}
	_, err = signin.ProveKey(ctx, dev, key, req.PIN, registered)
	return err
}

// pickRegistration chooses among the user's registrations the one whose
// authenticator is present: the one named, else the one the user signed in
// with last (remembered sign-in information), else the default, else the
// oldest.
func (d *Daemon) pickRegistration(regs []store.Registration, named, last string) (store.Registration, backend.Device, error) {
	if named != "" {
		regs = slices.DeleteFunc(slices.Clone(regs), func(r store.Registration) bool { return r.AuthenticatorID != named })
	}
	rank := func(r store.Registration) int {
		switch {
		case last != "" && r.AuthenticatorID == last:
			return 0
		case r.Default:
			return 1
		}
		return 2
	}
	// A stable sort keeps the store's order (oldest first) within a rank.
	ordered := slices.Clone(regs)
	slices.SortStableFunc(ordered, func(a, b store.Registration) int { return cmp.Compare(rank(a), rank(b)) })
	for _, reg := range ordered {
		dev, err := d.manager.Device(reg.AuthenticatorID)
		if err != nil && reg.Kind == ipc.KindSecurityKey {
			// A security key has no serial: its credential may be on a key
			// plugged in elsewhere.
			dev, err = d.manager.FirstOfKind(ipc.KindSecurityKey)
		}
		if err == nil {
			return reg, dev, nil
		}
	}
	if named != "" {
		if _, err := d.manager.Device(named); err == nil {
			return store.Registration{}, nil, ipc.Errorf(ipc.CodeNotRegistered, "authenticator %s is not registered to this user", named)
		}
	}
	return store.Registration{}, nil, ipc.Errorf(ipc.CodeNoAuthenticator, "insert your smart card or plug in your security key, then try again")
}

// lastAuthenticator returns the authenticator user signed in with last, ""
// when nothing is remembered (or after forget).
func (d *Daemon) lastAuthenticator(ctx context.Context, user string) string {
	remembered, err := d.store.Recall(ctx, user)
	if err != nil {
		d.log.Warn("recall remembered sign-in information", "user", user, "err", err)
		return ""
	}
	return remembered[rememberLastAuthenticator]
}

// getSessions lists the sessions the caller may see: sign-in services and
// admins every user's (narrowed by ?user=), others their own.
func (d *Daemon) getSessions(w http.ResponseWriter, r *http.Request) error {
	c := d.callerOf(r)
	user := r.URL.Query().Get("user")
	if !c.seesEveryUser() {
		user = c.name
	}
	match := func(s ipc.Session) bool { return user == "" || s.User == user }
	if !c.seesEveryUser() && c.name == "" {
		match = func(ipc.Session) bool { return false }
	}
	return server.WriteJSON(w, http.StatusOK, ipc.SessionsResponse{Sessions: d.sessions.List(match)})
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
	s, ok := d.sessions.Open(id, d.cfg.SignIn.SessionLifetime.Duration, req)
	if !ok {
		return ipc.Errorf(ipc.CodeNotFound, "no session %q", id)
	}
	d.log.Info("session opened", "user", s.User, "session", s.ID, "login_session", s.LoginSession, "login_pid", s.LoginPID)
	return server.WriteJSON(w, http.StatusOK, ipc.SignInResponse{Session: s})
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
	remembered, err := d.store.Recall(ctx, name)
	if err != nil {
		return ipc.ForgetResponse{}, err
	}
	if err := d.store.Forget(ctx, name); err != nil {
		return ipc.ForgetResponse{}, err
	}
	resp := ipc.ForgetResponse{User: name, Forgotten: slices.Sorted(maps.Keys(remembered))}
	if d.sessions.DropPINsWhere(func(s ipc.Session) bool { return s.User == name }) > 0 {
		resp.Forgotten = append(resp.Forgotten, ipc.ForgottenCachedPIN)
	}
	d.log.Info("sign-in information forgotten", "user", name, "forgotten", resp.Forgotten)
	return resp, nil
}
