package main

import (
	"net/http"
	"slices"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// fakeState is the daemon state behind the registration, session, virtual
// card, link and FIDO PIN routes of the fake API; fakeAPI.mu guards it.
type fakeState struct {
	regs     map[string][]ipc.Registration
	cards    []ipc.VirtualSmartcard
	links    map[string][]ipc.Link
	sessions []ipc.Session
	// What the CLI sent last.
	paths               []string
	pin, puk, newPIN    string
	create              ipc.VirtualSmartcardCreateRequest
	csr                 ipc.CSRRequest
	cert                string
	signIn              ipc.SignInRequest
	forgot, signedOut   string
	deletedCard, linked string
}

// t0 is noon UTC, so that its date is the same in every time zone the
// tests may run in (UTC-11 to UTC+11).
var t0 = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

func newFakeState() *fakeState {
	used := t0.Add(time.Hour)
	return &fakeState{
		regs: map[string][]ipc.Registration{"alice": {
			{ID: "reg-1", User: "alice", Authenticator: "piv-1", Kind: ipc.KindSmartcard, Label: "work card", Default: true, CreatedAt: t0},
			{ID: "reg-2", User: "alice", Authenticator: "vsc-1", Kind: ipc.KindVirtualSmartcard, Label: "laptop", CreatedAt: t0, LastUsedAt: &used},
		}},
		cards: []ipc.VirtualSmartcard{{ID: "vsc-1", Label: "laptop", Algorithm: string(device.ECCP256), PublicKey: "-----BEGIN PUBLIC KEY-----\nAQ==\n-----END PUBLIC KEY-----\n", CreatedAt: t0}},
		links: map[string][]ipc.Link{"alice": {{Identity: "upn:alice@example.com", CreatedBy: "root", CreatedAt: t0}}},
		sessions: []ipc.Session{
			{ID: "ses-a", User: "alice", Authenticator: "piv-1", StartedAt: t0, ExpiresAt: t0.Add(8 * time.Hour)},
			{ID: "ses-b", User: "bob", Authenticator: "piv-2", StartedAt: t0, ExpiresAt: t0.Add(8 * time.Hour)},
		},
	}
}

// route builds a route whose handler runs with f.mu held and the path
// recorded.
func (f *fakeAPI) route(method, pattern string, h func(s *fakeState, w http.ResponseWriter, r *http.Request) error) server.Route {
	return server.Route{Method: method, Pattern: pattern, Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.state.paths = append(f.state.paths, method+" "+r.URL.EscapedPath())
		return h(f.state, w, r)
	}}
}

// wrongPIN is the daemon's answer to a PIN other than "123456".
func wrongPIN(pin ipc.Secret) error {
	if string(pin) == "123456" {
		return nil
	}
	return ipc.FromHW(&hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(2)})
}

func (f *fakeAPI) stateRoutes() []server.Route {
	return slices.Concat(f.registrationRoutes(), f.sessionRoutes(), f.vscRoutes(), f.linkRoutes())
}

func (f *fakeAPI) registrationRoutes() []server.Route {
	return []server.Route{
		f.route("GET", "/v1/users/{user}/registrations", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			u := r.PathValue("user")
			rs := ipc.RegistrationsResponse{User: u, Limit: 5, Registrations: s.regs[u]}
			for _, reg := range rs.Registrations {
				if reg.Default {
					rs.Default = reg.ID
				}
			}
			return server.WriteJSON(w, 200, rs)
		}),
		f.route("POST", "/v1/users/{user}/registrations", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			var req ipc.RegisterRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			defer req.Wipe()
			s.pin = string(req.PIN)
			if err := wrongPIN(req.PIN); err != nil {
				return err
			}
			u := r.PathValue("user")
			if len(s.regs[u]) >= 5 {
				return ipc.Errorf(ipc.CodeLimitReached, "%s already has 5 authenticators", u)
			}
			reg := ipc.Registration{ID: "reg-new", User: u, Authenticator: req.Authenticator, Kind: ipc.KindSmartcard, Label: req.Label, Default: len(s.regs[u]) == 0, CreatedAt: t0}
			s.regs[u] = append(s.regs[u], reg)
			return server.WriteJSON(w, 201, reg)
		}),
		f.route("DELETE", "/v1/users/{user}/registrations/{rid}", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			u, id := r.PathValue("user"), r.PathValue("rid")
			i := slices.IndexFunc(s.regs[u], func(reg ipc.Registration) bool { return reg.ID == id })
			if i < 0 {
				return ipc.Errorf(ipc.CodeNotFound, "no registration %q", id)
			}
			wasDefault := s.regs[u][i].Default
			s.regs[u] = slices.Delete(s.regs[u], i, i+1)
			newDefault := ""
			for j := range s.regs[u] {
				if wasDefault && j == 0 {
					s.regs[u][j].Default = true
				}
				if s.regs[u][j].Default {
					newDefault = s.regs[u][j].ID
				}
			}
			return server.WriteJSON(w, 200, map[string]string{"removed": id, "default": newDefault})
		}),
		f.route("PUT", "/v1/users/{user}/default", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			var req ipc.SetDefaultRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			regs := s.regs[r.PathValue("user")]
			if !slices.ContainsFunc(regs, func(reg ipc.Registration) bool { return reg.ID == req.Registration }) {
				return ipc.Errorf(ipc.CodeNotFound, "no registration %q", req.Registration)
			}
			for i := range regs {
				regs[i].Default = regs[i].ID == req.Registration
			}
			return server.WriteJSON(w, 200, map[string]string{"default": req.Registration})
		}),
		f.route("POST", "/v1/users/{user}/forget", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			s.forgot = r.PathValue("user")
			return server.WriteJSON(w, 200, ipc.ForgetResponse{User: s.forgot, Forgotten: []string{ipc.ForgottenLastAuthenticator}})
		}),
	}
}

func (f *fakeAPI) sessionRoutes() []server.Route {
	return []server.Route{
		f.route("POST", "/v1/sign-in", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			var req ipc.SignInRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			defer req.Wipe()
			s.pin, s.signIn = string(req.PIN), ipc.SignInRequest{User: req.User, Authenticator: req.Authenticator}
			if err := wrongPIN(req.PIN); err != nil {
				return err
			}
			auth := req.Authenticator
			if auth == "" {
				auth = "piv-1"
			}
			ses := ipc.Session{ID: "ses-new", User: req.User, Authenticator: auth, StartedAt: t0, ExpiresAt: t0.Add(8 * time.Hour)}
			s.sessions = append(s.sessions, ses)
			return server.WriteJSON(w, 200, ipc.SignInResponse{Session: ses})
		}),
		f.route("GET", "/v1/sessions", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			return server.WriteJSON(w, 200, ipc.SessionsResponse{Sessions: s.sessions})
		}),
		f.route("DELETE", "/v1/sessions/{id}", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			i := slices.IndexFunc(s.sessions, func(ses ipc.Session) bool { return ses.ID == r.PathValue("id") })
			if i < 0 {
				return ipc.Errorf(ipc.CodeNotFound, "no session %q", r.PathValue("id"))
			}
			ses := s.sessions[i]
			s.signedOut = ses.ID
			s.sessions = slices.Delete(s.sessions, i, i+1)
			if r.URL.Query().Get("forget") == "true" {
				s.forgot = ses.User
				return server.WriteJSON(w, 200, ipc.ForgetResponse{User: ses.User, Forgotten: []string{ipc.ForgottenLastAuthenticator, ipc.ForgottenCachedPIN}})
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}),
		f.route("POST", "/v1/authenticators/{id}/pin/set", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			var req ipc.PINSetRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			defer req.Wipe()
			s.newPIN = string(req.NewPIN)
			eight := 8
			return server.WriteJSON(w, 200, ipc.PINResult{RetriesLeft: hwerr.TriesLeft(eight)})
		}),
	}
}

// card returns the virtual card of the request's {id}.
func (s *fakeState) card(r *http.Request) (int, error) {
	i := slices.IndexFunc(s.cards, func(c ipc.VirtualSmartcard) bool { return c.ID == r.PathValue("id") })
	if i < 0 {
		return 0, ipc.Errorf(ipc.CodeNotFound, "no virtual smart card %q", r.PathValue("id"))
	}
	return i, nil
}

func (f *fakeAPI) vscRoutes() []server.Route {
	return []server.Route{
		f.route("POST", "/v1/virtual-smartcards", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			var req ipc.VirtualSmartcardCreateRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			defer req.Wipe()
			s.pin, s.puk = string(req.PIN), string(req.PUK)
			s.create = ipc.VirtualSmartcardCreateRequest{Label: req.Label, Algorithm: req.Algorithm, Attest: req.Attest}
			c := ipc.VirtualSmartcard{ID: "vsc-" + req.Label, Label: req.Label, Algorithm: req.Algorithm, Device: "tpm-ek-1", CreatedAt: t0}
			if req.Attest {
				c.Attestation = &ipc.KeyAttestation{AKPublic: "AK", CertifyInfo: []byte("certify"), Signature: []byte("sig")}
			}
			s.cards = append(s.cards, c)
			return server.WriteJSON(w, 201, c)
		}),
		f.route("GET", "/v1/virtual-smartcards", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			return server.WriteJSON(w, 200, ipc.VirtualSmartcardsResponse{VirtualSmartcards: s.cards})
		}),
		f.route("GET", "/v1/virtual-smartcards/{id}", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			i, err := s.card(r)
			if err != nil {
				return err
			}
			return server.WriteJSON(w, 200, s.cards[i])
		}),
		f.route("DELETE", "/v1/virtual-smartcards/{id}", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			i, err := s.card(r)
			if err != nil {
				return err
			}
			s.deletedCard = s.cards[i].ID
			s.cards = slices.Delete(s.cards, i, i+1)
			w.WriteHeader(http.StatusNoContent)
			return nil
		}),
		f.route("POST", "/v1/virtual-smartcards/{id}/csr", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			var req ipc.CSRRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			defer req.Wipe()
			s.pin = string(req.PIN)
			s.csr = ipc.CSRRequest{Subject: req.Subject, UPN: req.UPN, Emails: req.Emails, DNSNames: req.DNSNames}
			if err := wrongPIN(req.PIN); err != nil {
				return err
			}
			return server.WriteJSON(w, 200, ipc.CSRResponse{CSR: "-----BEGIN CERTIFICATE REQUEST-----\nQ1NS\n-----END CERTIFICATE REQUEST-----\n"})
		}),
		f.route("PUT", "/v1/virtual-smartcards/{id}/certificate", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			var req ipc.CertificateImport
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			i, err := s.card(r)
			if err != nil {
				return err
			}
			s.cert = req.Certificate
			s.cards[i].Certificate = req.Certificate
			return server.WriteJSON(w, 200, s.cards[i])
		}),
	}
}

func (f *fakeAPI) linkRoutes() []server.Route {
	return []server.Route{
		f.route("GET", "/v1/users/{user}/links", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			u := r.PathValue("user")
			return server.WriteJSON(w, 200, ipc.LinksResponse{User: u, Links: s.links[u], Linking: u != "alice"})
		}),
		f.route("POST", "/v1/users/{user}/links", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			var req ipc.LinkRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			l := ipc.Link{Identity: req.Identity, CreatedBy: "root", CreatedAt: t0}
			s.links[r.PathValue("user")] = append(s.links[r.PathValue("user")], l)
			s.linked = req.Identity
			return server.WriteJSON(w, 201, l)
		}),
		f.route("DELETE", "/v1/users/{user}/links/{identity}", func(s *fakeState, w http.ResponseWriter, r *http.Request) error {
			u := r.PathValue("user")
			i := slices.IndexFunc(s.links[u], func(l ipc.Link) bool { return l.Identity == r.PathValue("identity") })
			if i < 0 {
				return ipc.Errorf(ipc.CodeNotFound, "no link %q for %s", r.PathValue("identity"), u)
			}
			s.links[u] = slices.Delete(s.links[u], i, i+1)
			w.WriteHeader(http.StatusNoContent)
			return nil
		}),
	}
}
