package server

import (
	"net/http"

	"github.com/hwauthd/hwauthd/ipc"
)

// Access decides whether a peer may call a route. CheckAccess returns nil to
// allow, or an error (normally an *ipc.Error with code unauthorized) to deny.
// Every route must have one: New refuses a nil Access.
type Access interface {
	CheckAccess(r *http.Request, p Peer) error
}

// BodyAccess is an Access that needs the request body to decide, such as
// sign-in, which names its user in the body. The server reads the body (at
// most Config.MaxBodyBytes) before the check and calls CheckAccessBody
// instead of CheckAccess; the handler's DecodeJSON decodes the same bytes,
// which are zeroed after the handler returns.
type BodyAccess interface {
	Access
	CheckAccessBody(r *http.Request, p Peer, body []byte) error
}

// AccessFunc adapts a function to Access.
type AccessFunc func(r *http.Request, p Peer) error

// CheckAccess calls f.
func (f AccessFunc) CheckAccess(r *http.Request, p Peer) error { return f(r, p) }

// denied is the error of a refused access check.
func denied(why string) error {
	return ipc.Errorf(ipc.CodeUnauthorized, "not allowed: %s", why)
}

// Anyone allows every local peer whose credentials could be read (the server
// refuses the others before any checker runs).
var Anyone Access = AccessFunc(func(*http.Request, Peer) error { return nil })

// Root allows only uid 0.
var Root Access = AccessFunc(func(_ *http.Request, p Peer) error {
	if p.UID == 0 {
		return nil
	}
	return denied("only root may do this")
})

// Deny refuses everyone; for routes not open yet.
var Deny Access = AccessFunc(func(*http.Request, Peer) error {
	return denied("this route is closed")
})

// InGroup allows peers whose primary or supplementary groups include one of
// gids.
func InGroup(gids ...uint32) Access {
	return AccessFunc(func(_ *http.Request, p Peer) error {
		for _, g := range gids {
			if p.InGroup(g) {
				return nil
			}
		}
		return denied("your account is not in a group allowed to do this")
	})
}

// AnyOf allows a peer that one of the checkers allows; with none (or only
// nil ones) it denies.
// The error of the last checker is returned when all deny.
func AnyOf(checks ...Access) Access {
	return AccessFunc(func(r *http.Request, p Peer) error {
		var err error
		for _, c := range checks {
			if c == nil {
				continue
			}
			if err = c.CheckAccess(r, p); err == nil {
				return nil
			}
		}
		if err == nil { // no checker ran; the error is built only on denial
			err = denied("no rule allows this")
		}
		return err
	})
}
