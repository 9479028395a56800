package daemon_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/daemon/daemontest"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/apitest"
)

// The callers of the access matrix in docs/api.md, by column, and the user
// each one connects as ("" for a connection without credentials).
var matrixCallers = map[string]string{
	"root":              "root",
	"owner":             "alice",
	"other user":        "mallory",
	"no authenticators": "carol",
	"sign-in group":     "login",
	"admin group":       "it",
	"nobody":            "",
}

// accessWorld is a daemon with alice's registered card and session,
// mallory's registered card, and a card registered to nobody.
type accessWorld struct {
	h       *daemontest.Harness
	card    *daemontest.Card // alice's
	free    *daemontest.Card // registered to nobody
	reg     string           // alice's registration
	session string           // alice's session
	// pinsSeen is how many PINs alice's card saw while setting up.
	pinsSeen int
}

func newAccessWorld(t *testing.T) *accessWorld {
	h := daemontest.New(t)
	h.AddUser("login", h.Config.Access.SignInGroup)
	h.AddUser("it", h.Config.Access.AdminGroup)
	h.AddUser("carol")
	h.AddUser("alice")
	h.AddUser("mallory")
	ctx := context.Background()
	w := &accessWorld{h: h, card: h.Insert(daemontest.CardOptions{Label: "alice"}), free: h.Insert(daemontest.CardOptions{Label: "spare"})}
	mallorys := h.Insert(daemontest.CardOptions{Label: "mallory"})
	root := h.Client("root")
	reg, err := root.Register(ctx, "alice", ipc.RegisterRequest{Authenticator: w.card.ID(), PIN: ipc.Secret(daemontest.PIN)})
	if err != nil {
		t.Fatal(err)
	}
	w.reg = reg.ID
	if _, err := root.Register(ctx, "mallory", ipc.RegisterRequest{Authenticator: mallorys.ID(), PIN: ipc.Secret(daemontest.PIN)}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Link(ctx, "alice", "upn:alice@example.com"); err != nil {
		t.Fatal(err)
	}
	s, err := root.SignIn(ctx, ipc.SignInRequest{User: "alice", PIN: ipc.Secret(daemontest.PIN)})
	if err != nil {
		t.Fatal(err)
	}
	w.session = s.ID
	w.pinsSeen = w.card.PINsSeen()
	return w
}

// request makes the route's request on alice's resources.
func (w *accessWorld) request(route string) (method, path, body string) {
	method, pattern, _ := strings.Cut(route, " ")
	id := w.card.ID()
	switch {
	case strings.HasPrefix(pattern, "/v1/virtual-smartcards/"):
		id = "vsc-0000"
	case strings.HasPrefix(pattern, "/v1/sessions/"):
		id = w.session
	}
	path = strings.NewReplacer("{user}", "alice", "{id}", id, "{rid}", w.reg, "{identity}", "upn:alice@example.com").Replace(pattern)
	digest := sha256.Sum256([]byte("matrix"))
	pin := fmt.Sprintf("%q", daemontest.PIN)
	switch {
	case strings.HasSuffix(path, "/pin/verify"):
		body = `{"pin": ` + pin + `}`
	case strings.HasSuffix(path, "/pin/change"):
		body = `{"pin": ` + pin + `, "new_pin": ` + pin + `}`
	case strings.HasSuffix(path, "/pin/unblock"):
		body = fmt.Sprintf(`{"puk": %q, "new_pin": %s}`, daemontest.PUK, pin)
	case strings.HasSuffix(path, "/pin/set"):
		body = `{"new_pin": ` + pin + `}`
	case strings.HasSuffix(path, "/sign"):
		body = fmt.Sprintf(`{"key": "9a", "algorithm": "ecdsa-sha256", "digest": %q, "pin": %s}`, base64.StdEncoding.EncodeToString(digest[:]), pin)
	case strings.HasSuffix(path, "/credentials"):
		body = fmt.Sprintf(`{"client_data_hash": %q, "user_id": "YWxpY2U=", "user_name": "alice", "pin": %s}`, base64.StdEncoding.EncodeToString(digest[:]), pin)
	case strings.HasSuffix(path, "/assertions"):
		body = fmt.Sprintf(`{"client_data_hash": %q, "pin": %s}`, base64.StdEncoding.EncodeToString(digest[:]), pin)
	case path == "/v1/virtual-smartcards":
		body = `{"label": "vsc", "pin": ` + pin + `, "puk": "12345678"}`
	case strings.HasSuffix(path, "/csr"):
		body = `{"subject": "CN=alice"}`
	case strings.HasSuffix(path, "/certificate"):
		body = `{"certificate": "x"}`
	case method == "POST" && strings.HasSuffix(path, "/registrations"):
		body = fmt.Sprintf(`{"authenticator": %q, "pin": %s}`, w.free.ID(), pin)
	case strings.HasSuffix(path, "/default"):
		body = fmt.Sprintf(`{"registration": %q}`, w.reg)
	case method == "POST" && strings.HasSuffix(path, "/links"):
		body = `{"identity": "upn:alice@example.com"}`
	case path == "/v1/sign-in":
		body = `{"user": "alice", "pin": ` + pin + `}`
	case path == "/v1/sessions":
		path += "?user=alice"
	}
	return method, path, body
}

// TestAccessMatrix runs every route as each of seven callers against the
// matrix in docs/api.md, each call on a fresh daemon, and fails when the
// daemon and the matrix disagree, or when a route is in one and not the
// other. Every resource a route names exists, so refused means unauthorized,
// not_found (another user's session is hidden as missing) or, for a peer
// without credentials, a closed connection; allowed means any other answer.
// A refusal must also leave the cards without a PIN seen.
func TestAccessMatrix(t *testing.T) {
	callers, matrix, err := apitest.AccessMatrix("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range callers {
		if _, ok := matrixCallers[c]; !ok {
			t.Fatalf("docs/api.md's access matrix has a column %q this test does not know", c)
		}
	}
	if len(callers) != len(matrixCallers) {
		t.Fatalf("docs/api.md's access matrix has columns %v, want the seven callers of %v", callers, matrixCallers)
	}
	documented, err := apitest.DocumentedRoutes("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for route := range documented {
		if _, ok := matrix[route]; !ok {
			t.Errorf("%s is in the route table of docs/api.md but not in its access matrix", route)
		}
	}
	for route, row := range matrix {
		if _, ok := documented[route]; !ok {
			t.Errorf("the access matrix lists %s, which is not a route", route)
			continue
		}
		for _, c := range callers {
			t.Run(route+" as "+c, func(t *testing.T) {
				t.Parallel()
				w := newAccessWorld(t)
				method, path, body := w.request(route)
				user := matrixCallers[c]
				status, code := call(t, w.h.HTTP(user), method, path, body, user == "")
				refused := code == string(ipc.CodeUnauthorized) || code == string(ipc.CodeNotFound) || code == connectionClosed
				if want := row[c]; refused == want {
					t.Fatalf("%s %s as %s: %d %s, but docs/api.md says %v", method, path, c, status, code, yesNo(want))
				}
				if refused && (w.card.PINsSeen() != w.pinsSeen || w.card.PUKsSeen() != 0 || w.free.PINsSeen() != 0) {
					t.Errorf("refused, but a card saw a secret: alice's %d PINs %d PUKs, the free card %d PINs",
						w.card.PINsSeen(), w.card.PUKsSeen(), w.free.PINsSeen())
				}
			})
		}
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// connectionClosed is call's code for a connection the server closed
// without an answer, as it does to a peer without credentials.
const connectionClosed = "(connection closed)"

// call makes one request and returns the status and the error code ("" for
// a success). An event stream is closed once its headers arrive. With
// mayClose, a connection closed without an answer is connectionClosed, not a
// failure.
func call(t *testing.T, c *http.Client, method, path, body string, mayClose bool) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://hwauthd"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil && mayClose {
		return 0, connectionClosed
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		return resp.StatusCode, ""
	}
	b, _ := io.ReadAll(resp.Body)
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err != nil || env.Error.Code == "" {
		t.Fatalf("%s %s: %d answer outside the envelope: %q", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, env.Error.Code
}
