package signin

import (
	"context"
	"errors"
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
	"github.com/hwauthd/hwauthd/ipc/client"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// fakeDaemon serves the four routes the module calls over a real
// ipc/server on a private socket, with a real event bus behind GET
// /v1/events. Each card has a PIN and a try counter, as a PIV card does.
type fakeDaemon struct {
	bus *events.Bus

	mu      sync.Mutex
	regs    map[string][]ipc.Registration
	present []ipc.Authenticator
	pins    map[string]string
	tries   map[string]int
	signIns int
}

func newFakeDaemon(t *testing.T) (*fakeDaemon, *client.Client) {
	f := &fakeDaemon{bus: events.New(16, 16), regs: map[string][]ipc.Registration{}, pins: map[string]string{}, tries: map[string]int{}}
	t.Cleanup(f.bus.Close)
	socket := apitest.Start(t, server.Config{}, f.routes())
	return f, client.New(socket)
}

// card makes an authenticator with PIN pin and 3 tries.
func (f *fakeDaemon) card(id, label, pin string) ipc.Authenticator {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pins[id], f.tries[id] = pin, 3
	return ipc.Authenticator{ID: id, Kind: ipc.KindSmartcard, Backend: ipc.BackendPIV, Label: label}
}

func (f *fakeDaemon) register(user string, a ipc.Authenticator, label string, def bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.regs[user] = append(f.regs[user], ipc.Registration{ID: "r-" + a.ID, User: user, Authenticator: a.ID, Kind: a.Kind, Label: label, Default: def})
}

// insert makes a present and publishes its event atomically with respect to
// new subscribers' snapshots.
func (f *fakeDaemon) insert(a ipc.Authenticator) {
	f.bus.Do(func(publish func(ipc.Event) ipc.Event) {
		f.mu.Lock()
		f.present = append(f.present, a)
		f.mu.Unlock()
		publish(ipc.Event{Type: ipc.EventCardInserted, Authenticator: a.ID})
	})
}

func (f *fakeDaemon) signInCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.signIns
}

func (f *fakeDaemon) routes() []server.Route {
	return []server.Route{
		{Method: "GET", Pattern: "/v1/users/{user}/registrations", Access: server.Root, Handler: f.getRegistrations},
		{Method: "GET", Pattern: "/v1/authenticators", Access: server.Anyone, Handler: f.getAuthenticators},
		{Method: "GET", Pattern: "/v1/events", Access: server.Anyone, Handler: f.getEvents},
		{Method: "POST", Pattern: "/v1/sign-in", Access: server.Root, Handler: f.postSignIn},
	}
}

func (f *fakeDaemon) getRegistrations(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("user")
	if name == "nobody-here" {
		return ipc.Errorf(ipc.CodeNotFound, "no account %q on this machine", name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return server.WriteJSON(w, http.StatusOK, ipc.RegistrationsResponse{User: name, Limit: 5, Registrations: append([]ipc.Registration{}, f.regs[name]...)})
}

func (f *fakeDaemon) getAuthenticators(w http.ResponseWriter, r *http.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return server.WriteJSON(w, http.StatusOK, ipc.AuthenticatorsResponse{Authenticators: append([]ipc.Authenticator{}, f.present...)})
}

func (f *fakeDaemon) getEvents(w http.ResponseWriter, r *http.Request) error {
	since, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
	sub, err := f.bus.Subscribe(since, nil, func() []ipc.Event {
		f.mu.Lock()
		defer f.mu.Unlock()
		var out []ipc.Event
		for _, a := range f.present {
			out = append(out, ipc.Event{Type: ipc.EventCardInserted, Authenticator: a.ID})
		}
		return out
	})
	if err != nil {
		return err
	}
	defer sub.Close()
	return server.StreamJSONLines(w, r, func(ctx context.Context) (any, error) { return sub.Next(ctx) })
}

// postSignIn checks the PIN on the card like a PIV card would: a wrong one
// counts down, none left is blocked.
func (f *fakeDaemon) postSignIn(w http.ResponseWriter, r *http.Request) error {
	var req ipc.SignInRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signIns++
	if !registered(req.Authenticator, f.regs[req.User]) {
		return ipc.Errorf(ipc.CodeNotRegistered, "authenticator %s is not registered to %s", req.Authenticator, req.User)
	}
	if f.tries[req.Authenticator] == 0 {
		return ipc.FromHW(fmt.Errorf("verify pin: %w", hwerr.ErrPINBlocked))
	}
	if string(req.PIN) != f.pins[req.Authenticator] {
		f.tries[req.Authenticator]--
		if f.tries[req.Authenticator] == 0 {
			return ipc.FromHW(fmt.Errorf("verify pin: %w", hwerr.ErrPINBlocked))
		}
		return ipc.FromHW(&hwerr.PINIncorrect{What: "PIN", RetriesLeft: f.tries[req.Authenticator]})
	}
	f.tries[req.Authenticator] = 3
	now := time.Now()
	return server.WriteJSON(w, http.StatusOK, ipc.SignInResponse{Session: ipc.Session{ID: "s1", User: req.User, Authenticator: req.Authenticator, StartedAt: now, ExpiresAt: now.Add(time.Hour)}})
}

// conv is a scripted conversation: it answers prompts from answers and
// records what it was asked and shown. Each Info is also sent on infos
// when it is set, so a test can act when the module asks for the card.
type conv struct {
	answers  [][]byte
	given    [][]byte // the buffers handed out, to check they were cleared
	prompts  []string
	shown    []string // "info: …" and "error: …"
	infos    chan<- string
	failWith error
}

func (c *conv) PromptSecret(prompt string) ([]byte, error) {
	c.prompts = append(c.prompts, prompt)
	if c.failWith != nil {
		return nil, c.failWith
	}
	if len(c.answers) == 0 {
		return nil, errors.New("no more answers")
	}
	a := c.answers[0]
	c.answers = c.answers[1:]
	c.given = append(c.given, a)
	return a, nil
}

func (c *conv) Info(msg string) error {
	c.shown = append(c.shown, "info: "+msg)
	if c.infos != nil {
		c.infos <- msg
	}
	return nil
}

func (c *conv) Error(msg string) error {
	c.shown = append(c.shown, "error: "+msg)
	return nil
}
