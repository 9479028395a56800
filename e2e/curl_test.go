package e2e

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// curlDo runs curl against the daemon's socket with args and returns the
// answer's body and status (curl's -w). It fails the test when curl fails.
func curlDo(t *testing.T, socket string, args ...string) (status, body string) {
	t.Helper()
	all := append([]string{"--unix-socket", socket, "-sS", "--max-time", "20", "-w", "\n%{http_code}"}, args...)
	out, err := exec.Command("curl", all...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %q: %v\n%s", args, err, out)
	}
	text := strings.TrimRight(string(out), "\n")
	i := strings.LastIndexByte(text, '\n')
	if i < 0 {
		return text, ""
	}
	return text[i+1:], text[:i]
}

// TestCurlServesEveryKindOfRoute: curl --unix-socket, the client docs/api.md
// names, works against the daemon (its own process) for every kind of
// route: GET, HEAD, POST with JSON (with and without Expect: 100-continue,
// HTTP/1.0), DELETE, and the event stream, which it reads as it comes; an
// HTTP/2 attempt is refused and the daemon keeps serving.
func TestCurlServesEveryKindOfRoute(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is missing (scripts/install-deps.sh installs it)")
	}
	h := startProcess(t)
	card := h.insert(0, pivcard.Options{})
	base := "http://hwauthd"

	// The stream first: it must show the registration made below.
	stream := exec.Command("curl", "--unix-socket", h.socket, "-sSN", "--max-time", "30", base+"/v1/events")
	out, err := stream.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stream.Process.Kill(); _ = stream.Wait() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	if status, body := curlDo(t, h.socket, base+"/v1/status"); status != "200" || !strings.Contains(body, `"version"`) {
		t.Fatalf("GET status: %s %s", status, body)
	}
	if status, body := curlDo(t, h.socket, "-I", base+"/v1/status"); status != "200" || !strings.Contains(strings.ToLower(body), "content-length:") {
		t.Fatalf("HEAD status: %s %s", status, body)
	}
	verify := base + "/v1/authenticators/" + card.id + "/pin/verify"
	pin := `{"pin":"` + pivcard.DefaultPIN + `"}`
	for _, extra := range [][]string{nil, {"-H", "Expect: 100-continue"}, {"-0"}} {
		args := append([]string{"-H", "Content-Type: application/json", "-d", pin}, extra...)
		if status, body := curlDo(t, h.socket, append(args, verify)...); status != "200" || !strings.Contains(body, `"verified":true`) {
			t.Fatalf("POST verify %q: %s %s", extra, status, body)
		}
	}
	status, body := curlDo(t, h.socket, "-H", "Content-Type: application/json",
		"-d", `{"authenticator":"`+card.id+`","pin":"`+pivcard.DefaultPIN+`"}`, base+"/v1/users/root/registrations")
	var reg struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &reg); status != "201" || err != nil || reg.ID == "" {
		t.Fatalf("POST registration: %s %s", status, body)
	}
	if status, body := curlDo(t, h.socket, "-d", `{"pin":`, verify); status != "400" || !strings.Contains(body, `"bad_request"`) {
		t.Fatalf("malformed JSON: %s %s", status, body)
	}
	// A body of NUL bytes is answered (zeroing it where it was read once
	// spun forever, since zeroed bytes still matched it).
	nul := exec.Command("curl", "--unix-socket", h.socket, "-sS", "--max-time", "10", "-w", "\n%{http_code}", "--data-binary", "@-", verify)
	nul.Stdin = strings.NewReader("\x00\x00\x00\x00")
	if out, err := nul.CombinedOutput(); err != nil || !strings.HasSuffix(string(out), "\n400") {
		t.Fatalf("a body of NUL bytes: %v\n%s", err, out)
	}
	// The event stream shows the registration as it happens.
	deadline := time.After(20 * time.Second)
	for seen := false; !seen; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("the event stream ended")
			}
			seen = strings.Contains(line, `"registration-added"`)
		case <-deadline:
			t.Fatal("no registration-added event on curl's stream")
		}
	}
	if status, body := curlDo(t, h.socket, "-X", "DELETE", base+"/v1/users/root/registrations/"+reg.ID); !strings.HasPrefix(status, "2") {
		t.Fatalf("DELETE registration: %s %s", status, body)
	}
	if status, body := curlDo(t, h.socket, base+"/v1/users/root/registrations"); status != "200" || strings.Contains(body, reg.ID) {
		t.Fatalf("registrations after DELETE: %s %s", status, body)
	}
	// HTTP/2 with prior knowledge is refused; the daemon goes on serving.
	if out, err := exec.Command("curl", "--unix-socket", h.socket, "-sS", "--max-time", "10", "--http2-prior-knowledge", base+"/v1/status").CombinedOutput(); err == nil {
		t.Errorf("curl --http2-prior-knowledge succeeded: %s", out)
	}
	if status, _ := curlDo(t, h.socket, base+"/v1/status"); status != "200" {
		t.Fatalf("status after HTTP/2: %s", status)
	}
}
