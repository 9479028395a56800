// Package fakeapi serves the part of hwauthd's API that the PAM module calls
// (registrations, authenticators, events, sign-in, sign-out) over a real
// ipc/server on a private socket, with a real event bus behind GET
// /v1/events, for the module's tests before and beside the real daemon.
// Each card has a PIN and a try counter that blocks at zero, as a PIV card.
package fakeapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/daemon/events"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/apitest"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// UnknownUser is the account name the fake answers not_found for.
const UnknownUser = "nobody-here"

// Tries is the number of PIN tries of a new card.
const Tries = 3

// Daemon is the fake's state. Its methods are safe for concurrent use.
type Daemon struct {
	// Socket is the socket the fake listens on.
	Socket string

	bus *events.Bus

	mu       sync.Mutex
	regs     map[string][]ipc.Registration
	present  []ipc.Authenticator
	pins     map[string]string
	tries    map[string]int
	signIns  int
	signOuts []string
	opens    []ipc.OpenSessionRequest
	last     map[string]string // user → authenticator signed in with last
	unblock  bool              // policy.self_service_unblock
	required int               // policy.required_count
}

// Start serves the fake until the test ends.
func Start(t testing.TB) *Daemon {
	d := &Daemon{bus: events.New(16, 16), regs: map[string][]ipc.Registration{}, pins: map[string]string{}, tries: map[string]int{}, last: map[string]string{}}
	t.Cleanup(d.bus.Close)
	d.Socket = apitest.Start(t, server.Config{}, d.routes())
	return d
}

// Card makes a PIV smart card with the PIN pin and Tries tries; it is not
// present until Insert.
func (d *Daemon) Card(id, label, pin string) ipc.Authenticator {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pins[id], d.tries[id] = pin, Tries
	return ipc.Authenticator{ID: id, Kind: ipc.KindSmartcard, Backend: ipc.BackendPIV, Label: label}
}

// Register binds a to user under label.
func (d *Daemon) Register(user string, a ipc.Authenticator, label string, isDefault bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.regs[user] = append(d.regs[user], ipc.Registration{ID: "r-" + a.ID, User: user, Authenticator: a.ID, Kind: a.Kind, Label: label, Default: isDefault})
}

// Insert makes a present and publishes card-inserted atomically with
// respect to new subscribers' snapshots.
func (d *Daemon) Insert(a ipc.Authenticator) {
	d.bus.Do(func(publish func(ipc.Event) ipc.Event) {
		d.mu.Lock()
		d.present = append(d.present, a)
		d.mu.Unlock()
		publish(ipc.Event{Type: ipc.EventCardInserted, Authenticator: a.ID})
	})
}

// SetBlocked marks a present authenticator's PIN blocked in the listing.
func (d *Daemon) SetBlocked(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.present {
		if d.present[i].ID == id {
			d.present[i].PIN.Blocked = true
		}
	}
}

// Present returns the present authenticators.
func (d *Daemon) Present() []ipc.Authenticator {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]ipc.Authenticator{}, d.present...)
}

// SetSelfServiceUnblock sets the fake's policy.self_service_unblock.
func (d *Daemon) SetSelfServiceUnblock(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unblock = on
}

// SetRequiredCount sets the fake's policy.required_count.
func (d *Daemon) SetRequiredCount(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.required = n
}

// SignIns returns how many sign-in requests arrived.
func (d *Daemon) SignIns() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.signIns
}

// Opens returns the bodies of the session opens that arrived.
func (d *Daemon) Opens() []ipc.OpenSessionRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]ipc.OpenSessionRequest(nil), d.opens...)
}

// SignOuts returns the ids of the sessions signed out.
func (d *Daemon) SignOuts() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.signOuts...)
}

func (d *Daemon) routes() []server.Route {
	return []server.Route{
		{Method: "GET", Pattern: "/v1/status", Access: server.Anyone, Handler: d.getStatus},
		{Method: "GET", Pattern: "/v1/users/{user}/registrations", Access: server.Root, Handler: d.getRegistrations},
		{Method: "GET", Pattern: "/v1/users/{user}/requirements", Access: server.Root, Handler: d.getRequirements},
		{Method: "GET", Pattern: "/v1/authenticators", Access: server.Anyone, Handler: d.getAuthenticators},
		{Method: "GET", Pattern: "/v1/events", Access: server.Anyone, Handler: d.getEvents},
		{Method: "POST", Pattern: "/v1/sign-in", Access: server.Root, Handler: d.postSignIn},
		{Method: "DELETE", Pattern: "/v1/sessions/{id}", Access: server.Root, Handler: d.deleteSession},
		{Method: "POST", Pattern: "/v1/sessions/{id}/open", Access: server.Root, Handler: d.postOpen},
	}
}

func (d *Daemon) getStatus(w http.ResponseWriter, r *http.Request) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return server.WriteJSON(w, http.StatusOK, ipc.Status{Version: "fake", Backends: map[string]ipc.BackendStatus{},
		Policy: ipc.StatusPolicy{SelfService: true, SelfServiceUnblock: d.unblock}})
}

// getRequirements answers as the daemon does for policy.required_count.
func (d *Daemon) getRequirements(w http.ResponseWriter, r *http.Request) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := r.PathValue("user")
	if name == UnknownUser {
		return ipc.Errorf(ipc.CodeNotFound, "no account %q on this machine", name)
	}
	req := ipc.Requirements{User: name, RequiredCount: d.required, Registered: len(d.regs[name]), RequiredKinds: []string{}, MissingOneOf: []string{}}
	req.MissingCount = max(d.required-req.Registered, 0)
	req.Satisfied = req.MissingCount == 0
	if !req.Satisfied {
		req.Message = "You haven't set up the security info required by your organization: you need one more smart card, virtual smart card or security key, so register it with hwauthctl register, then sign in again."
	}
	return server.WriteJSON(w, http.StatusOK, req)
}

func (d *Daemon) getRegistrations(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("user")
	if name == UnknownUser {
		return ipc.Errorf(ipc.CodeNotFound, "no account %q on this machine", name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return server.WriteJSON(w, http.StatusOK, ipc.RegistrationsResponse{User: name, Limit: 5, Registrations: append([]ipc.Registration{}, d.regs[name]...), LastAuthenticator: d.last[name]})
}

func (d *Daemon) getAuthenticators(w http.ResponseWriter, r *http.Request) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return server.WriteJSON(w, http.StatusOK, ipc.AuthenticatorsResponse{Authenticators: append([]ipc.Authenticator{}, d.present...)})
}

func (d *Daemon) snapshot() []ipc.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []ipc.Event
	for _, a := range d.present {
		out = append(out, ipc.Event{Type: ipc.EventCardInserted, Authenticator: a.ID})
	}
	return out
}

func (d *Daemon) getEvents(w http.ResponseWriter, r *http.Request) error {
	since, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
	sub, err := d.bus.Subscribe(since, nil, d.snapshot)
	if err != nil {
		return err
	}
	defer sub.Close()
	return server.StreamJSONLines(w, r, func(ctx context.Context) (any, error) { return sub.Next(ctx) })
}

// postSignIn checks the PIN as a PIV card would: a wrong one counts down,
// none left is blocked.
func (d *Daemon) postSignIn(w http.ResponseWriter, r *http.Request) error {
	var req ipc.SignInRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.signIns++
	if !d.registeredLocked(req.User, req.Authenticator) {
		return ipc.Errorf(ipc.CodeNotRegistered, "authenticator %s is not registered to %s", req.Authenticator, req.User)
	}
	if d.tries[req.Authenticator] == 0 {
		return d.blockedLocked(req.Authenticator)
	}
	if string(req.PIN) != d.pins[req.Authenticator] {
		d.tries[req.Authenticator]--
		if d.tries[req.Authenticator] == 0 {
			return d.blockedLocked(req.Authenticator)
		}
		return ipc.FromHW(&hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(d.tries[req.Authenticator])})
	}
	d.tries[req.Authenticator] = Tries
	d.last[req.User] = req.Authenticator
	now := time.Now()
	sess := ipc.Session{ID: fmt.Sprintf("s%d", d.signIns), User: req.User, Authenticator: req.Authenticator, StartedAt: now, ExpiresAt: now.Add(time.Hour)}
	return server.WriteJSON(w, http.StatusOK, ipc.SignInResponse{Session: sess})
}

// blockedLocked answers pin_blocked as the daemon does.
func (d *Daemon) blockedLocked(id string) error {
	how, msg := ipc.PINBlockedAdvice(ipc.Authenticator{ID: id, Kind: ipc.KindSmartcard}, d.unblock)
	return &ipc.Error{Code: ipc.CodePINBlocked, Message: msg, Details: map[string]any{"unblock": how}}
}

func (d *Daemon) registeredLocked(user, id string) bool {
	for _, r := range d.regs[user] {
		if r.Authenticator == id {
			return true
		}
	}
	return false
}

func (d *Daemon) deleteSession(w http.ResponseWriter, r *http.Request) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.signOuts = append(d.signOuts, r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (d *Daemon) postOpen(w http.ResponseWriter, r *http.Request) error {
	var req ipc.OpenSessionRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opens = append(d.opens, req)
	return server.WriteJSON(w, http.StatusOK, ipc.SignInResponse{Session: ipc.Session{ID: r.PathValue("id"), LoginPID: req.PID}})
}
