package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func ok(w http.ResponseWriter, r *http.Request) error {
	return WriteJSON(w, http.StatusOK, map[string]string{"path": r.URL.Path, "id": r.PathValue("id")})
}

func TestListen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "x.sock")
	ln, err := Listen(path, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("mode = %v, want 0660", fi.Mode().Perm())
	}
	if _, err := Listen(path, 0); err == nil || !strings.Contains(err.Error(), "another hwauthd is running on "+path) {
		t.Errorf("second Listen = %v, want refusal", err)
	}
	// Leave a stale socket behind: closed without unlinking.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	ln, err = Listen(path, 0)
	if err != nil {
		t.Fatalf("Listen over stale socket: %v", err)
	}
	ln.Close()
	plain := filepath.Join(dir, "file")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(plain, 0); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a plain file = %v, want refusal", err)
	}
}

func TestNewRefusesRouteWithoutAccess(t *testing.T) {
	_, err := New(Config{}, []Route{{Method: "GET", Pattern: "/v1/status", Handler: ok}})
	if err == nil || !strings.Contains(err.Error(), "no access checker") {
		t.Fatalf("New = %v, want refusal", err)
	}
	_, err = New(Config{}, []Route{
		{Method: "GET", Pattern: "/v1/a", Access: Anyone, Handler: ok},
		{Method: "GET", Pattern: "/v1/a", Access: Anyone, Handler: ok},
	})
	if err == nil {
		t.Fatal("New accepted a duplicate route")
	}
}

func TestRoutingAndErrors(t *testing.T) {
	mapped := errors.New("mapped")
	routes := []Route{
		{Method: "GET", Pattern: "/v1/ok/{id}", Access: Anyone, Handler: ok},
		{Method: "GET", Pattern: "/v1/denied", Access: Deny, Handler: ok},
		{Method: "GET", Pattern: "/v1/apierr", Access: Anyone, Handler: func(http.ResponseWriter, *http.Request) error {
			two := 2
			return fmt.Errorf("verify: %w", &ipc.Error{Code: ipc.CodePINIncorrect, Message: "wrong PIN, 2 tries left", RetriesLeft: hwerr.TriesLeft(two)})
		}},
		{Method: "GET", Pattern: "/v1/mapped", Access: Anyone, Handler: func(http.ResponseWriter, *http.Request) error { return mapped }},
		{Method: "GET", Pattern: "/v1/plain", Access: Anyone, Handler: func(http.ResponseWriter, *http.Request) error { return errors.New("secret detail") }},
		{Method: "GET", Pattern: "/v1/panic", Access: Anyone, Handler: func(http.ResponseWriter, *http.Request) error { panic("boom") }},
	}
	cfg := Config{MapError: func(err error) *ipc.Error {
		if errors.Is(err, mapped) {
			return ipc.Errorf(ipc.CodeBusy, "busy now")
		}
		return nil
	}}
	sock, _ := startServer(t, cfg, routes)
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/v1/ok/x", 200, ""},
		{"GET", "/v1/nope", 404, "not_found"},
		{"POST", "/v1/ok/x", 405, "method_not_allowed"},
		{"GET", "/v1/denied", 403, "unauthorized"},
		{"GET", "/v1/apierr", 403, "pin_incorrect"},
		{"GET", "/v1/mapped", 409, "busy"},
		{"GET", "/v1/plain", 500, "internal"},
		{"GET", "/v1/panic", 500, "internal"},
		{"GET", "/v1/ok/y", 200, ""}, // still serving after the panic
	}
	for _, tt := range tests {
		status, body := do(t, sock, tt.method, tt.path, "")
		if status != tt.status || errorCode(body) != tt.code {
			t.Errorf("%s %s = %d %v, want %d %q", tt.method, tt.path, status, body, tt.status, tt.code)
		}
		if strings.Contains(fmt.Sprint(body), "secret detail") {
			t.Errorf("%s leaks the internal error: %v", tt.path, body)
		}
	}
	if _, body := do(t, sock, "GET", "/v1/ok/a%2Fb", ""); body["id"] != "a/b" {
		t.Errorf("path value = %v, want a/b", body["id"])
	}
	_, body := do(t, sock, "GET", "/v1/apierr", "")
	if e := body["error"].(map[string]any); e["retries_left"] != float64(2) {
		t.Errorf("retries_left = %v, want 2", e["retries_left"])
	}
}

// TestPathsNotInCanonicalForm: ServeMux would answer a 307 redirect with an
// HTML body; the API answers bad_request in the envelope.
func TestPathsNotInCanonicalForm(t *testing.T) {
	sock, _ := startServer(t, Config{}, []Route{{Method: "GET", Pattern: "/v1/ok/{id}", Access: Anyone, Handler: ok}})
	for _, p := range []string{"/v1/x/../ok/a", "/v1//ok/a", "/v1/ok/./a", "//v1/ok/a"} {
		status, body := do(t, sock, "GET", p, "")
		if status != http.StatusBadRequest || errorCode(body) != "bad_request" {
			t.Errorf("GET %s = %d %v, want 400 bad_request", p, status, body)
		}
	}
}

// TestBodyAccessSeesTheBodyTheHandlerDecodes: a checker that reads the body
// and the handler's DecodeJSON see the same bytes, read once.
func TestBodyAccessSeesTheBodyTheHandlerDecodes(t *testing.T) {
	type req struct {
		User string `json:"user"`
		PIN  string `json:"pin"`
	}
	check := bodyCheck(func(body []byte) error {
		var v req
		if err := PeekJSON(body, &v); err != nil {
			return err
		}
		if v.User != "alice" {
			return denied("only alice")
		}
		return nil
	})
	var got req
	routes := []Route{{Method: "POST", Pattern: "/v1/in", Access: check, Handler: func(w http.ResponseWriter, r *http.Request) error {
		if err := DecodeJSON(r, &got); err != nil {
			return err
		}
		return WriteJSON(w, 200, map[string]string{})
	}}}
	sock, _ := startServer(t, Config{}, routes)
	if status, body := do(t, sock, "POST", "/v1/in", `{"user":"alice","pin":"1234"}`); status != 200 || got.PIN != "1234" {
		t.Fatalf("allowed: %d %v, decoded %+v", status, body, got)
	}
	for body, code := range map[string]string{
		`{"user":"bob","pin":"1234"}`:                                 "unauthorized",
		`{"user":"alice","user":"bob"}`:                               "bad_request",
		`{"user":"alice","pin":"` + strings.Repeat("1", 70000) + `"}`: "too_large",
	} {
		if status, answer := do(t, sock, "POST", "/v1/in", body); errorCode(answer) != code {
			t.Errorf("POST %.40s… = %d %v, want %s", body, status, answer, code)
		}
	}
}

// bodyCheck is a BodyAccess for tests.
type bodyCheck func(body []byte) error

func (f bodyCheck) CheckAccess(*http.Request, Peer) error { return denied("needs the body") }
func (f bodyCheck) CheckAccessBody(_ *http.Request, _ Peer, body []byte) error {
	return f(body)
}

func TestPeerCredentials(t *testing.T) {
	var got Peer
	routes := []Route{{Method: "GET", Pattern: "/v1/me", Access: Root, Handler: func(w http.ResponseWriter, r *http.Request) error {
		p, ok := PeerFromContext(r.Context())
		if !ok {
			return errors.New("no peer")
		}
		got = p
		return WriteJSON(w, 200, map[string]uint32{"uid": p.UID})
	}}}
	sock, _ := startServer(t, Config{}, routes)
	if status, body := do(t, sock, "GET", "/v1/me", ""); status != 200 {
		t.Fatalf("GET /v1/me = %d %v", status, body)
	}
	if got.UID != uint32(os.Getuid()) || got.GID != uint32(os.Getgid()) || got.PID != int32(os.Getpid()) {
		t.Errorf("peer = %+v, want uid %d gid %d pid %d", got, os.Getuid(), os.Getgid(), os.Getpid())
	}
	want, _ := os.Getgroups()
	for _, g := range want {
		if !slices.Contains(got.Groups, uint32(g)) {
			t.Errorf("peer groups %v lack %d", got.Groups, g)
		}
	}
}

func TestProcGroupsFallback(t *testing.T) {
	gs, err := procGroups(int32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.Getgroups()
	if len(gs) != len(want) {
		t.Fatalf("procGroups = %v, want %v", gs, want)
	}
	if _, err := parseGroups("1 x"); err == nil {
		t.Fatal("parseGroups accepted garbage")
	}
}

// TestAccessOtherUser connects as uid 65534 with supplementary group 4242
// from a helper process and checks the checkers decide on its credentials.
func TestAccessOtherUser(t *testing.T) {
	testenv.RequireRoot(t)
	routes := []Route{
		{Method: "GET", Pattern: "/v1/root", Access: Root, Handler: ok},
		{Method: "GET", Pattern: "/v1/group", Access: InGroup(4242), Handler: ok},
		{Method: "GET", Pattern: "/v1/othergroup", Access: InGroup(4243), Handler: ok},
		{Method: "GET", Pattern: "/v1/anyof", Access: AnyOf(Root, InGroup(4242)), Handler: ok},
		{Method: "GET", Pattern: "/v1/anyone", Access: Anyone, Handler: ok},
		{Method: "GET", Pattern: "/v1/me", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			p, _ := PeerFromContext(r.Context())
			return WriteJSON(w, 200, p)
		}},
	}
	sock, _ := startServer(t, Config{}, routes)
	bin := copyTestBinary(t, filepath.Dir(filepath.Dir(sock)))
	tests := []struct {
		path string
		want string
	}{
		{"/v1/root", "403 "},
		{"/v1/group", "200 "},
		{"/v1/othergroup", "403 "},
		{"/v1/anyof", "200 "},
		{"/v1/anyone", "200 "},
		{"/v1/me", `200 {"UID":65534,"GID":65534,`},
	}
	var paths []string
	for _, tt := range tests {
		paths = append(paths, tt.path)
	}
	lines := strings.Split(strings.TrimSpace(runHelper(t, bin, sock, strings.Join(paths, ","))), "\n")
	if len(lines) != len(tests) {
		t.Fatalf("helper answered %d lines, want %d: %q", len(lines), len(tests), lines)
	}
	for i, tt := range tests {
		if !strings.HasPrefix(lines[i], tt.want) {
			t.Errorf("GET %s as nobody = %q, want prefix %q", tt.path, lines[i], tt.want)
		}
	}
	if me := lines[len(lines)-1]; !strings.Contains(me, `"Groups":[4242]`) {
		t.Errorf("peer of helper = %s, want Groups [4242]", me)
	}
}

// runHelper runs this test binary as uid/gid 65534 with group 4242 to GET path.
func runHelper(t *testing.T, bin, sock, path string) string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "HWAUTHD_SERVER_HELPER=get", "HELPER_SOCKET="+sock, "HELPER_PATH="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{4242}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	return string(out)
}

func TestActivationListener(t *testing.T) {
	if _, ok, err := ActivationListener(); ok || err != nil {
		t.Fatalf("ActivationListener without activation = %v, %v", ok, err)
	}
	path := filepath.Join(t.TempDir(), "act.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	run := func(files ...*os.File) string {
		cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0"`, os.Args[0])
		cmd.Env = append(os.Environ(), "HWAUTHD_SERVER_HELPER=activation", fmt.Sprintf("LISTEN_FDS=%d", len(files)))
		cmd.ExtraFiles = files
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v: %s", err, out)
		}
		return string(out)
	}
	if out := run(f); out != "ok=true addr="+path {
		t.Errorf("one socket: %q", out)
	}
	if out := run(f, f); !strings.Contains(out, "want exactly one") {
		t.Errorf("two sockets: %q", out)
	}
}

// copyTestBinary copies this test binary where uid 65534 can run it.
func copyTestBinary(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helper.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestNoCredentialsNoAccess serves a request whose connection had no
// readable credentials: even an Anyone route refuses it.
func TestNoCredentialsNoAccess(t *testing.T) {
	s, err := New(Config{}, []Route{{Method: "GET", Pattern: "/v1/status", Access: Anyone, Handler: ok}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/status", nil))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), `"unauthorized"`) {
		t.Fatalf("no credentials: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/status", nil).WithContext(WithPeer(context.Background(), Peer{UID: 1000})))
	if rec.Code != http.StatusOK {
		t.Fatalf("with credentials: %d %s", rec.Code, rec.Body)
	}
}

// TestServeEndsWithContext checks Serve returns nil once its context ends.
func TestServeEndsWithContext(t *testing.T) {
	ln, err := Listen(filepath.Join(t.TempDir(), "s.sock"), 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}
