package client

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/apitest"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// linkRoutes serves the identity link routes over an in-memory map.
func linkRoutes(mu *sync.Mutex, links map[string][]ipc.Link) []server.Route {
	return []server.Route{
		{Method: "GET", Pattern: "/v1/users/{user}/links", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			mu.Lock()
			defer mu.Unlock()
			u := r.PathValue("user")
			return server.WriteJSON(w, 200, ipc.LinksResponse{User: u, Links: links[u]})
		}},
		{Method: "POST", Pattern: "/v1/users/{user}/links", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			var req ipc.LinkRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			l := ipc.Link{Identity: req.Identity, CreatedBy: "root", CreatedAt: time.Now().UTC()}
			links[r.PathValue("user")] = append(links[r.PathValue("user")], l)
			return server.WriteJSON(w, 201, l)
		}},
		{Method: "DELETE", Pattern: "/v1/users/{user}/links/{identity}", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			mu.Lock()
			defer mu.Unlock()
			u, id := r.PathValue("user"), r.PathValue("identity")
			for i, l := range links[u] {
				if l.Identity == id {
					links[u] = append(links[u][:i], links[u][i+1:]...)
					w.WriteHeader(http.StatusNoContent)
					return nil
				}
			}
			return ipc.Errorf(ipc.CodeNotFound, "no link %q", id)
		}},
	}
}

func TestLinks(t *testing.T) {
	var mu sync.Mutex
	links := map[string][]ipc.Link{}
	c := New(apitest.Start(t, server.Config{}, linkRoutes(&mu, links)))
	// A subject DN with a slash and a space must survive as one path segment.
	ids := []string{"upn:alice@example.com", "subject:CN=Alice Smith/O=Example, Inc."}
	for _, id := range ids {
		l, err := c.Link(ctx(t), "alice", id)
		if err != nil || l.Identity != id || l.CreatedBy != "root" {
			t.Fatalf("Link(%q) = %+v, %v", id, l, err)
		}
	}
	got, err := c.Links(ctx(t), "alice")
	if err != nil || got.User != "alice" || len(got.Links) != 2 || got.Links[1].Identity != ids[1] {
		t.Fatalf("Links = %+v, %v", got, err)
	}
	if err := c.Unlink(ctx(t), "alice", ids[1]); err != nil {
		t.Fatalf("Unlink(%q): %v", ids[1], err)
	}
	if err := c.Unlink(ctx(t), "alice", ids[1]); !IsCode(err, ipc.CodeNotFound) {
		t.Fatalf("second Unlink = %v, want not_found", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(links["alice"]) != 1 || links["alice"][0].Identity != ids[0] {
		t.Fatalf("links left = %+v", links["alice"])
	}
}

// TestSecretRoutes checks that SetPIN and VirtualSmartcardCSR send their
// secrets in clear to the daemon (and nowhere else), and that
// RemoveRegistration and VirtualSmartcards decode their answers.
func TestSecretRoutes(t *testing.T) {
	var gotPIN, gotNew []byte
	var gotSubject string
	routes := []server.Route{
		{Method: "POST", Pattern: "/v1/authenticators/{id}/pin/set", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			var req ipc.PINSetRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			gotNew = bytes.Clone(req.NewPIN)
			req.Wipe()
			return server.WriteJSON(w, 200, ipc.PINResult{Verified: true})
		}},
		{Method: "POST", Pattern: "/v1/virtual-smartcards/{id}/csr", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			var req ipc.CSRRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			gotPIN, gotSubject = bytes.Clone(req.PIN), req.Subject
			req.Wipe()
			return server.WriteJSON(w, 200, ipc.CSRResponse{CSR: "-----BEGIN CERTIFICATE REQUEST-----\n"})
		}},
		{Method: "GET", Pattern: "/v1/virtual-smartcards", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			return server.WriteJSON(w, 200, ipc.VirtualSmartcardsResponse{VirtualSmartcards: []ipc.VirtualSmartcard{{ID: "vsc-1", Label: "laptop"}}})
		}},
		{Method: "DELETE", Pattern: "/v1/users/{user}/registrations/{rid}", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			return server.WriteJSON(w, 200, map[string]string{"removed": r.PathValue("rid"), "default": "reg-2"})
		}},
	}
	c := New(apitest.Start(t, server.Config{}, routes))
	newPIN := []byte("2468")
	if res, err := c.SetPIN(ctx(t), "fido-1", newPIN); err != nil || !res.Verified {
		t.Fatalf("SetPIN = %+v, %v", res, err)
	}
	if string(gotNew) != "2468" || string(newPIN) != "2468" {
		t.Fatalf("SetPIN sent %q; caller's buffer %q", gotNew, newPIN)
	}
	csr, err := c.VirtualSmartcardCSR(ctx(t), "vsc-1", ipc.CSRRequest{Subject: "CN=Alice", PIN: []byte("123456")})
	if err != nil || csr == "" || string(gotPIN) != "123456" || gotSubject != "CN=Alice" {
		t.Fatalf("CSR = %q, %v; daemon got PIN %q subject %q", csr, err, gotPIN, gotSubject)
	}
	cards, err := c.VirtualSmartcards(ctx(t))
	if err != nil || len(cards) != 1 || cards[0].Label != "laptop" {
		t.Fatalf("VirtualSmartcards = %+v, %v", cards, err)
	}
	rm, err := c.RemoveRegistration(ctx(t), "alice", "reg-1")
	if err != nil || rm.Removed != "reg-1" || rm.Default != "reg-2" {
		t.Fatalf("RemoveRegistration = %+v, %v", rm, err)
	}
}
