package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hwauthd/hwauthd/daemon/events"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/apitest"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// fakeAPI records what the CLI sent; the routes answer like the daemon's
// contract says.
type fakeAPI struct {
	mu       sync.Mutex
	lastPIN  string
	lastNew  string
	lastSign ipc.SignRequest
	calls    int
	bus      *events.Bus
	state    *fakeState
}

func (f *fakeAPI) routes() []server.Route {
	two := 2
	three := 3
	return []server.Route{
		{Method: "GET", Pattern: "/v1/status", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			return server.WriteJSON(w, 200, ipc.Status{Version: "1.2.3", UptimeSeconds: 3725, Backends: map[string]ipc.BackendStatus{
				"pcsc": {State: ipc.BackendUp, Readers: &two}, "tpm": {State: ipc.BackendUp, Manufacturer: "IBM"},
				"fido2": {State: ipc.BackendDown, Detail: "no hidraw access"}}})
		}},
		{Method: "GET", Pattern: "/v1/readers", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			return server.WriteJSON(w, 200, ipc.ReadersResponse{Readers: []ipc.Reader{{Name: "Test PCD 00 00", CardPresent: true, ATR: "3b8c80"}, {Name: "Test PCD 00 01"}}})
		}},
		{Method: "GET", Pattern: "/v1/authenticators", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			return server.WriteJSON(w, 200, ipc.AuthenticatorsResponse{Authenticators: []ipc.Authenticator{
				{ID: "piv-1", Kind: ipc.KindSmartcard, Backend: ipc.BackendPIV, Reader: "Test PCD 00 00", Label: "Alice", PIN: ipc.PINState{RetriesLeft: hwerr.TriesLeft(three)}},
				{ID: "vsc-1", Kind: ipc.KindVirtualSmartcard, Backend: ipc.BackendTPM, Label: "laptop", PIN: ipc.PINState{Blocked: true}},
			}})
		}},
		{Method: "GET", Pattern: "/v1/authenticators/{id}", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			if r.PathValue("id") == "fido-1" {
				return server.WriteJSON(w, 200, ipc.Authenticator{ID: "fido-1", Kind: ipc.KindSecurityKey, Backend: ipc.BackendFIDO2, Label: "YubiKey 5", Serial: "42", PIN: ipc.PINState{RetriesLeft: hwerr.TriesLeft(three)}})
			}
			if r.PathValue("id") != "piv-1" {
				return ipc.Errorf(ipc.CodeNotFound, "no authenticator %q is present", r.PathValue("id"))
			}
			return server.WriteJSON(w, 200, ipc.Authenticator{ID: "piv-1", Kind: ipc.KindSmartcard, Backend: ipc.BackendPIV, Label: "Alice",
				Keys: []ipc.Key{{ID: "9a", Algorithm: "ecc-p256", PublicKey: "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n", Certificate: "CERT"}, {ID: "9c", Algorithm: "rsa-2048"}}})
		}},
		{Method: "POST", Pattern: "/v1/authenticators/{id}/pin/verify", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			var req ipc.PINVerifyRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			f.record(string(req.PIN), "")
			if r.PathValue("id") == "blocked" {
				return ipc.FromHW(hwerr.ErrPINBlocked)
			}
			if string(req.PIN) != "123456" {
				return ipc.FromHW(&hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(2)})
			}
			return server.WriteJSON(w, 200, ipc.PINResult{Verified: true, RetriesLeft: hwerr.TriesLeft(three)})
		}},
		{Method: "POST", Pattern: "/v1/authenticators/{id}/pin/change", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			var req ipc.PINChangeRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			f.record(string(req.PIN), string(req.NewPIN))
			return server.WriteJSON(w, 200, ipc.PINResult{Verified: true})
		}},
		{Method: "POST", Pattern: "/v1/authenticators/{id}/pin/unblock", Access: server.Deny, Handler: func(w http.ResponseWriter, r *http.Request) error {
			return server.WriteJSON(w, 200, ipc.PINResult{})
		}},
		{Method: "POST", Pattern: "/v1/authenticators/{id}/sign", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			var req ipc.SignRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			f.mu.Lock()
			f.lastSign = req
			f.calls++
			f.mu.Unlock()
			return server.WriteJSON(w, 200, ipc.SignResponse{Signature: append([]byte("sig:"), req.Digest...)})
		}},
		{Method: "GET", Pattern: "/v1/events", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			sub, err := f.bus.Subscribe(0, nil, func() []ipc.Event { return []ipc.Event{{Type: ipc.EventReaderAdded, Reader: "Test PCD 00 00"}} })
			if err != nil {
				return err
			}
			defer sub.Close()
			return server.StreamJSONLines(w, r, func(ctx context.Context) (any, error) { return sub.Next(ctx) })
		}},
	}
}

func (f *fakeAPI) record(pin, newPIN string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastPIN, f.lastNew = pin, newPIN
	f.calls++
}

// setup starts the fake API and returns a runner of hwauthctl against it.
func setup(t *testing.T) (*fakeAPI, func(stdin string, args ...string) (int, string, string)) {
	t.Helper()
	f := &fakeAPI{bus: events.New(16, 16), state: newFakeState()}
	sock := apitest.Start(t, server.Config{}, append(f.routes(), f.stateRoutes()...))
	return f, func(stdin string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		code := run(ctx, append([]string{"--socket", sock}, args...), strings.NewReader(stdin), &out, &errOut)
		return code, out.String(), errOut.String()
	}
}

func TestMain(m *testing.M) {
	stdinIsTerminal = func() bool { return false }
	currentUser = func() (string, error) { return "alice", nil }
	os.Exit(m.Run())
}

func TestOutputs(t *testing.T) {
	_, hw := setup(t)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"status"}, []string{"hwauthd 1.2.3, up 1h2m5s", "fido2    down   no hidraw access", "pcsc     up     2 readers", "tpm      up     manufacturer IBM"}},
		{[]string{"readers"}, []string{"READER          CARD  ATR", "Test PCD 00 00  yes   3b8c80", "Test PCD 00 01  no"}},
		{[]string{"list"}, []string{"ID     KIND               READER          LABEL   PIN", "piv-1  smartcard          Test PCD 00 00  Alice   3 tries left", "vsc-1  virtual-smartcard                  laptop  blocked"}},
		{[]string{"show", "piv-1"}, []string{"Kind:     smartcard", "9a   ecc-p256   yes", "9c   rsa-2048   no"}},
		{[]string{"show", "--pem", "piv-1"}, []string{"Key 9a public key:\n-----BEGIN PUBLIC KEY-----", "Key 9a certificate:\nCERT"}},
	}
	for _, tt := range tests {
		code, out, errOut := hw("", tt.args...)
		if code != 0 {
			t.Errorf("%v: exit %d, stderr %s", tt.args, code, errOut)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tt.args, w, out)
			}
		}
	}
}

func TestJSONOutput(t *testing.T) {
	_, hw := setup(t)
	code, out, _ := hw("", "--json", "status")
	var st ipc.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Version != "1.2.3" || st.Backends["tpm"].Manufacturer != "IBM" {
		t.Fatalf("status --json: %d %s", code, out)
	}
	code, out, _ = hw("", "--json", "list")
	var as ipc.AuthenticatorsResponse
	if code != 0 || json.Unmarshal([]byte(out), &as) != nil || len(as.Authenticators) != 2 || !as.Authenticators[1].PIN.Blocked {
		t.Fatalf("list --json: %d %s", code, out)
	}
	code, _, errOut := hw("123\n", "--json", "--pin-stdin", "pin", "verify", "piv-1")
	var e ipc.Error
	if code != exitPINWrong || json.Unmarshal([]byte(errOut), &e) != nil || e.Code != ipc.CodePINIncorrect || e.RetriesLeft != hwerr.TriesLeft(2) {
		t.Fatalf("pin verify --json wrong PIN: %d %s", code, errOut)
	}
}

func TestPINCommandsAndExitCodes(t *testing.T) {
	f, hw := setup(t)
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		out    string
		errOut string
	}{
		{"verify ok", "123456\n", []string{"pin", "verify", "piv-1"}, 0, "PIN verified. (3 tries left)", ""},
		{"verify wrong", "1111\n", []string{"pin", "verify", "piv-1"}, exitPINWrong, "", "wrong PIN, 2 tries left\nnext: type the PIN again carefully"},
		{"verify blocked", "1\n", []string{"pin", "verify", "blocked"}, exitPINBlocked, "", "hwauthctl pin unblock"},
		{"crlf", "123456\r\n", []string{"pin", "verify", "piv-1"}, 0, "PIN verified.", ""},
		{"change", "123456\n654321\n654321\n", []string{"pin", "change", "piv-1"}, 0, "PIN changed.", ""},
		{"unblock denied", "12345678\n1234\n1234\n", []string{"pin", "unblock", "piv-1"}, exitNotAllowed, "", "not allowed"},
		{"no such", "", []string{"show", "nope"}, exitNotFound, "", `no authenticator "nope"`},
		{"PIN as argument", "", []string{"pin", "verify", "piv-1", "123456"}, exitUsage, "", "takes 1 argument"},
		{"no id", "", []string{"pin", "verify"}, exitUsage, "", "takes 1 argument"},
		{"unknown flag", "", []string{"list", "--bogus"}, exitUsage, "", "unknown flag"},
		{"not a terminal", "", []string{"pin", "verify", "piv-1"}, exitUsage, "", "use --pin-stdin"},
		{"stdin ran out", "", []string{"--pin-stdin", "pin", "verify", "piv-1"}, exitError, "", "no more lines"},
	}
	for _, tt := range tests {
		args := tt.args
		if tt.stdin != "" {
			args = append([]string{"--pin-stdin"}, args...)
		}
		code, out, errOut := hw(tt.stdin, args...)
		if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.errOut) {
			t.Errorf("%s: exit %d, out %q, err %q; want %d, %q, %q", tt.name, code, out, errOut, tt.code, tt.out, tt.errOut)
		}
		if strings.Contains(errOut+out, "123456") || strings.Contains(errOut+out, "654321") {
			t.Errorf("%s: a PIN was printed: %s %s", tt.name, out, errOut)
		}
	}
	if f.lastPIN != "123456" || f.lastNew != "654321" {
		t.Errorf("change sent %q -> %q", f.lastPIN, f.lastNew)
	}
	before := f.calls
	code, _, errOut := hw("123456\n1111\n2222\n", "--pin-stdin", "pin", "change", "piv-1")
	if code != exitError || !strings.Contains(errOut, "differ") || f.calls != before {
		t.Errorf("mismatched new PINs: exit %d, %s, calls %d -> %d", code, errOut, before, f.calls)
	}
}

func TestUnreachable(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"--socket", filepath.Join(t.TempDir(), "no.sock"), "list"}, strings.NewReader(""), &out, &errOut)
	if code != exitUnreachable || !strings.Contains(errOut.String(), "is it running?") {
		t.Fatalf("exit %d, %s", code, errOut.String())
	}
}

func TestSign(t *testing.T) {
	f, hw := setup(t)
	digest := sha256.Sum256([]byte("hello"))
	b64 := base64.StdEncoding.EncodeToString(digest[:])
	code, out, errOut := hw("123456\n", "--pin-stdin", "sign", "piv-1", "--key", "9c", "--digest", b64)
	want := base64.StdEncoding.EncodeToString(append([]byte("sig:"), digest[:]...))
	if code != 0 || strings.TrimSpace(out) != want {
		t.Fatalf("sign --digest: %d %q %s", code, out, errOut)
	}
	if f.lastSign.Key != "9c" || f.lastSign.Algorithm != string(device.ECDSASHA256) || string(f.lastSign.PIN) != "123456" {
		t.Fatalf("server got %+v", f.lastSign)
	}
	file := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(file, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	sigFile := filepath.Join(t.TempDir(), "sig")
	code, out, errOut = hw("", "sign", "piv-1", "--no-pin", "--file", file, "--out", sigFile)
	got, _ := os.ReadFile(sigFile)
	if code != 0 || !bytes.Equal(got, append([]byte("sig:"), digest[:]...)) || len(f.lastSign.PIN) != 0 {
		t.Fatalf("sign --file --out: %d %q %s, pin %q", code, got, errOut, []byte(f.lastSign.PIN))
	}
	if want := fmt.Sprintf("Wrote the signature (%d bytes, ecdsa-sha256 with key 9a) to %s.\n", len(got), sigFile); out != want {
		t.Errorf("sign --out says %q, want %q", out, want)
	}
	// Every algorithm the API signs with is accepted, with its hash.
	for _, alg := range device.SignAlgorithms {
		code, _, errOut := hw("", "sign", "piv-1", "--no-pin", "--file", file, "--algorithm", string(alg))
		want := alg.Hash().New()
		want.Write([]byte("hello"))
		if code != 0 || f.lastSign.Algorithm != string(alg) || !bytes.Equal(f.lastSign.Digest, want.Sum(nil)) {
			t.Errorf("sign --algorithm %s: exit %d (%s), server got %+v", alg, code, errOut, f.lastSign)
		}
	}
	if _, _, errOut := hw("", "sign", "piv-1", "--no-pin", "--digest", b64, "--algorithm", "md5"); !strings.Contains(errOut, "rsa-pss-sha256") {
		t.Errorf("an unknown algorithm's refusal does not name the known ones: %s", errOut)
	}
	usage := [][]string{
		{"sign", "piv-1", "--no-pin"},
		{"sign", "piv-1", "--no-pin", "--digest-hex", "abcd"},
		{"sign", "piv-1", "--no-pin", "--digest", b64, "--digest-hex", "ab"},
		{"sign", "piv-1", "--no-pin", "--digest", b64, "--algorithm", "md5"},
		{"sign", "piv-1", "--no-pin", "--digest-hex", "zz"},
	}
	for _, args := range usage {
		if code, _, errOut := hw("", args...); code != exitUsage {
			t.Errorf("%v: exit %d (%s), want usage", args, code, errOut)
		}
	}
}

func TestWatch(t *testing.T) {
	f, _ := setup(t)
	sock := apitest.Start(t, server.Config{}, f.routes())
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		var errOut bytes.Buffer
		done <- run(ctx, []string{"--socket", sock, "--json", "watch"}, strings.NewReader(""), pw, &errOut)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	next := func() ipc.Event {
		if !sc.Scan() {
			t.Fatalf("watch output ended: %v", sc.Err())
		}
		var e ipc.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("watch line %q: %v", sc.Text(), err)
		}
		return e
	}
	if e := next(); e.Type != ipc.EventReaderAdded {
		t.Fatalf("first %+v", e)
	}
	if e := next(); e.Type != ipc.EventSnapshotDone {
		t.Fatalf("second %+v", e)
	}
	f.bus.Publish(ipc.Event{Type: ipc.EventCardInserted, Reader: "Test PCD 00 00"})
	if e := next(); e.Type != ipc.EventCardInserted || e.Seq != 1 {
		t.Fatalf("live %+v", e)
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("watch exit %d after interrupt", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not stop on cancel")
	}
	line := eventLine(ipc.Event{Seq: 4, Type: ipc.EventCardRemoved, Reader: "R 1", User: "alice"})
	if !strings.Contains(line, `#4 card-removed reader="R 1" user="alice"`) {
		t.Fatalf("eventLine = %q", line)
	}
}

// TestCommandTree walks the tree: every command documented, no flag that
// could carry a secret on the command line.
func TestCommandTree(t *testing.T) {
	root := newRootCmd(&app{})
	var walk func(c *cobra.Command)
	seen := 0
	walk = func(c *cobra.Command) {
		seen++
		if c.Short == "" {
			t.Errorf("%s has no Short help", c.CommandPath())
		}
		c.Flags().VisitAll(func(fl *pflag.Flag) {
			for _, bad := range []string{"pin", "puk", "new-pin", "password"} {
				if fl.Name == bad {
					t.Errorf("%s has flag --%s: secrets must not come from argv", c.CommandPath(), fl.Name)
				}
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for _, want := range []string{"status", "readers", "list", "show", "watch", "pin", "sign",
		"register", "registrations", "unregister", "default", "signin", "signout", "sessions", "forget",
		"vsc", "link", "unlink", "links", "fido"} {
		if !slices.ContainsFunc(root.Commands(), func(c *cobra.Command) bool { return c.Name() == want }) {
			t.Errorf("no %s command", want)
		}
	}
	if seen < 10 {
		t.Errorf("walked %d commands", seen)
	}
	if !strings.Contains(root.Long, "7  hwauthd cannot be reached") {
		t.Error("exit codes not in --help")
	}
}
