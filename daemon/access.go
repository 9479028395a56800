package daemon

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// The API's access rules. Every route in routes.go declares one of the
// checkers below (snapd's daemon/access.go is the model). A checker reads the
// path values it needs ({user}, {id}), the caller's identity and groups, the
// policy and the registry, and allows the request or refuses it before the
// handler runs; handlers make no access decisions of their own. There is no
// default: server.New refuses a route without a checker. Each checker's Who
// is the word in the "who" column of docs/api.md, and the access matrix there
// (one column per kind of caller) is run against the daemon by
// TestAccessMatrix in package daemon_test.

// accessRules is what the checkers decide from.
type accessRules struct {
	accounts Accounts
	policy   config.Policy
	admin    server.Access // root and the admin group
	signIn   server.Access // root, the admin group and the sign-in group
	// registeredTo returns the users the authenticator is registered to.
	registeredTo func(r *http.Request, id string) ([]string, error)
	// sessionUser returns the user of a session, ok false when there is
	// none.
	sessionUser func(id string) (user string, ok bool)
}

// newAccessRules resolves the configured group names; a group that does not
// exist on the machine grants nothing.
func newAccessRules(cfg config.Config, accounts Accounts, log *slog.Logger) *accessRules {
	group := func(key, name string) server.Access {
		gid, ok := accounts.GroupID(name)
		if !ok {
			if name != "" {
				log.Warn("configured group does not exist; it grants nothing", "key", key, "group", name)
			}
			return server.Deny
		}
		return server.InGroup(gid)
	}
	admin := server.AnyOf(server.Root, group("access.admin_group", cfg.Access.AdminGroup))
	return &accessRules{
		accounts: accounts,
		policy:   cfg.Policy,
		admin:    admin,
		signIn:   server.AnyOf(admin, group("access.signin_group", cfg.Access.SignInGroup)),
	}
}

// caller is the peer of a request as the rules see it.
type caller struct {
	uid  uint32
	name string // "" when the account database does not know the uid
	// admin: root or the admin group.
	admin bool
	// signIn: the sign-in service (root, the sign-in group) or an admin.
	signIn bool
}

// callerOf resolves a peer.
func (a *accessRules) callerOf(r *http.Request, p server.Peer) caller {
	c := caller{uid: p.UID}
	c.name, _ = a.accounts.UserName(p.UID)
	c.admin = a.admin.CheckAccess(r, p) == nil
	c.signIn = c.admin || a.signIn.CheckAccess(r, p) == nil
	return c
}

// is reports whether the caller is the named user.
func (c caller) is(user string) bool { return c.name != "" && c.name == user }

// seesEveryUser reports whether the caller may see every user's sessions and
// events (sign-in services and admins); others see their own only.
func (c caller) seesEveryUser() bool { return c.signIn }

// checker is an access checker that names itself as docs/api.md does.
type checker interface {
	server.Access
	// Who is the checker's word in the "who" column of docs/api.md.
	Who() string
}

// denied is the answer of a refused check.
func denied(format string, args ...any) error {
	return ipc.Errorf(ipc.CodeUnauthorized, format, args...)
}

// openAccess allows every local user whose credentials could be read.
type openAccess struct{}

// CheckAccess allows.
func (openAccess) CheckAccess(*http.Request, server.Peer) error { return nil }

// Who is "anyone".
func (openAccess) Who() string { return "anyone" }

// adminAccess allows root and the admin group.
type adminAccess struct{ a *accessRules }

// CheckAccess allows admins.
func (c adminAccess) CheckAccess(r *http.Request, p server.Peer) error {
	if c.a.callerOf(r, p).admin {
		return nil
	}
	return denied("only administrators may do this; contact your administrator")
}

// Who is "admin".
func (adminAccess) Who() string { return "admin" }

// userAccess allows acting on the user named by the path's {user}: that
// user themself, an admin, and with signIn the sign-in service. With
// selfService a user acts on themself only when policy.self_service is on
// (registering and removing authenticators).
type userAccess struct {
	a           *accessRules
	signIn      bool
	selfService bool
}

// CheckAccess reads {user}.
func (c userAccess) CheckAccess(r *http.Request, p server.Peer) error {
	return c.allow(c.a.callerOf(r, p), r.PathValue("user"))
}

// allow decides for a target user.
func (c userAccess) allow(who caller, user string) error {
	if err := validName("user", user); err != nil {
		return err
	}
	switch {
	case who.admin:
		return nil
	case who.is(user) && c.selfService && !c.a.policy.SelfService:
		return denied("your organisation lets only administrators register and remove authenticators; contact your administrator")
	case who.is(user):
		return nil
	case c.signIn && who.signIn:
		return nil
	}
	return denied("you may only see and change your own sign-in information")
}

// Who is "self", "self-service" or "self, sign-in".
func (c userAccess) Who() string {
	switch {
	case c.selfService:
		return "self-service"
	case c.signIn:
		return "self, sign-in"
	}
	return "self"
}

// sessionsAccess allows listing sessions: everyone their own; the sign-in
// service and admins anyone's (?user= narrows, and names another user only
// for them).
type sessionsAccess struct{ a *accessRules }

// CheckAccess reads ?user=.
func (c sessionsAccess) CheckAccess(r *http.Request, p server.Peer) error {
	user := r.URL.Query().Get("user")
	if user == "" {
		return nil
	}
	return userAccess{a: c.a, signIn: true}.allow(c.a.callerOf(r, p), user)
}

// Who is "self, sign-in".
func (sessionsAccess) Who() string { return "self, sign-in" }

// signInAccess allows signing in the user the body names: the user themself
// (a user may sign in as themselves), the sign-in service and admins.
type signInAccess struct{ a *accessRules }

var _ server.BodyAccess = signInAccess{}

// CheckAccess refuses: the decision needs the body (CheckAccessBody).
func (signInAccess) CheckAccess(*http.Request, server.Peer) error {
	return denied("sign-in needs the request body to decide")
}

// CheckAccessBody reads "user" from the body.
func (c signInAccess) CheckAccessBody(r *http.Request, p server.Peer, body []byte) error {
	var target struct {
		User string `json:"user"`
	}
	if err := server.PeekJSON(body, &target); err != nil {
		return err
	}
	if target.User == "" {
		return ipc.Errorf(ipc.CodeBadRequest, "user is required")
	}
	who := c.a.callerOf(r, p)
	err := userAccess{a: c.a, signIn: true}.allow(who, target.User)
	if e, ok := errors.AsType[*ipc.Error](err); ok && e.Code == ipc.CodeUnauthorized {
		return denied("only sign-in services may sign in on behalf of another user")
	}
	return err
}

// Who is "self, sign-in".
func (signInAccess) Who() string { return "self, sign-in" }

// ownerAccess allows using the authenticator {id} (PINs, signing, FIDO2):
// the users it is registered to and admins; an authenticator registered to
// nobody, any local user when policy.self_service is on (holding it is what
// counts; it is how one prepares and registers one's own). The sign-in
// service has no more rights here than any user: it uses cards through
// POST /v1/sign-in, for the user it signs in.
type ownerAccess struct{ a *accessRules }

// CheckAccess reads {id} and the registry.
func (c ownerAccess) CheckAccess(r *http.Request, p server.Peer) error {
	who := c.a.callerOf(r, p)
	if who.admin {
		return nil
	}
	id := r.PathValue("id")
	owners, owned, err := c.a.owns(r, who, id)
	if err != nil || owned {
		return err
	}
	if len(owners) == 0 {
		if c.a.policy.SelfService {
			return nil
		}
		return denied("authenticator %s is not registered to you; register it first (often done by IT)", id)
	}
	return denied("authenticator %s is registered to another user; only they and administrators may use it", id)
}

// owns reports whether the caller is one of the users the authenticator id
// is registered to, and returns those users.
func (a *accessRules) owns(r *http.Request, who caller, id string) (owners []string, owned bool, err error) {
	owners, err = a.registeredTo(r, id)
	if err != nil {
		return nil, false, err
	}
	for _, u := range owners {
		if who.is(u) {
			return owners, true, nil
		}
	}
	return owners, false, nil
}

// Who is "owner".
func (ownerAccess) Who() string { return "owner" }

// unblockAccess allows unblocking the PIN of the authenticator {id} with its
// PUK: admins, and the users it is registered to when
// policy.self_service_unblock is on.
type unblockAccess struct{ a *accessRules }

// CheckAccess reads {id} and the registry.
func (c unblockAccess) CheckAccess(r *http.Request, p server.Peer) error {
	who := c.a.callerOf(r, p)
	if who.admin {
		return nil
	}
	if !c.a.policy.SelfServiceUnblock {
		return denied("only administrators may unblock a PIN here; contact your administrator")
	}
	id := r.PathValue("id")
	if _, owned, err := c.a.owns(r, who, id); err != nil || owned {
		return err
	}
	return denied("authenticator %s is not registered to you; only its user or an administrator may unblock its PIN", id)
}

// Who is "self-service unblock".
func (unblockAccess) Who() string { return "self-service unblock" }

// sessionAccess allows ending the session {id}: its user, the sign-in
// service and admins. Another user's session answers not_found, as one that
// does not exist: a caller never sees another user's sessions.
type sessionAccess struct{ a *accessRules }

// CheckAccess reads {id} and the session table.
func (c sessionAccess) CheckAccess(r *http.Request, p server.Peer) error {
	who := c.a.callerOf(r, p)
	if who.signIn {
		return nil
	}
	user, ok := c.a.sessionUser(r.PathValue("id"))
	if !ok || who.is(user) {
		return nil // an unknown session is not_found for everyone
	}
	return ipc.Errorf(ipc.CodeNotFound, "no session %q", r.PathValue("id"))
}

// Who is "session".
func (sessionAccess) Who() string { return "session" }

// actingUser names the caller of a request for the failure limit and the
// records: the login name, or "uid:N" for a uid the account database does
// not know.
func (d *Daemon) actingUser(r *http.Request) string {
	p, _ := server.PeerFromContext(r.Context())
	return d.userName(p.UID)
}

// callerOf is the caller of a request that the route's checker allowed.
func (d *Daemon) callerOf(r *http.Request) caller {
	p, _ := server.PeerFromContext(r.Context())
	return d.rules.callerOf(r, p)
}
