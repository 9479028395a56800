package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// dial connects to socket with a 10 s deadline, closed when the test ends.
func dial(t *testing.T, socket string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// rawExchange writes text on a fresh connection and returns the reader of
// its answers.
func rawExchange(t *testing.T, socket, text string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c := dial(t, socket)
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// readAnswer reads one answer and its body.
func readAnswer(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestConnAnswers: pipelined requests on one connection get their answers
// in order; HEAD gets the head only; a malformed request gets the envelope
// and the connection ends; Connection: close is honoured.
func TestConnAnswers(t *testing.T) {
	sock, _ := startServer(t, Config{}, []Route{statusRoute})
	_, br := rawExchange(t, sock, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"+
		"HEAD /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"+
		"GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n"+
		"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, body := readAnswer(t, br, "GET")
	if resp.StatusCode != 200 || !strings.Contains(body, `"ok":"yes"`) || resp.ContentLength != int64(len(body)) {
		t.Fatalf("first: %d %q (Content-Length %d)", resp.StatusCode, body, resp.ContentLength)
	}
	resp, body = readAnswer(t, br, "HEAD")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength <= 0 {
		t.Fatalf("HEAD: %d %q (Content-Length %d)", resp.StatusCode, body, resp.ContentLength)
	}
	resp, body = readAnswer(t, br, "GET")
	if resp.StatusCode != 404 || !strings.Contains(body, `"not_found"`) {
		t.Fatalf("unknown path: %d %q", resp.StatusCode, body)
	}
	resp, _ = readAnswer(t, br, "GET")
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("Connection: close: %d, close %v", resp.StatusCode, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection still open after Connection: close: %v", err)
	}

	_, br = rawExchange(t, sock, "GET /v1/status HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
	resp, body = readAnswer(t, br, "GET")
	if resp.StatusCode != 400 || !strings.Contains(body, `"bad_request"`) || !resp.Close {
		t.Fatalf("malformed request: %d %q close %v", resp.StatusCode, body, resp.Close)
	}
}

// TestExpectContinue: a client that waits for 100 Continue before sending
// its body (curl does for large bodies) gets it and then the answer.
func TestExpectContinue(t *testing.T) {
	routes := []Route{{Method: "POST", Pattern: "/v1/x", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
		var v map[string]any
		if err := DecodeJSON(r, &v); err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, v)
	}}}
	sock, _ := startServer(t, Config{}, routes)
	body := `{"a":1}`
	c, br := rawExchange(t, sock, "POST /v1/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("before the body: %q %v, want 100 Continue", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, body); err != nil {
		t.Fatal(err)
	}
	resp, got := readAnswer(t, br, "POST")
	if resp.StatusCode != 200 || !strings.Contains(got, `"a":1`) {
		t.Fatalf("answer: %d %q", resp.StatusCode, got)
	}
}

// TestClientGoneCancelsLongHandler: a handler still running when its client
// closes the connection sees its context cancelled (the read-ahead), and
// one that answers at once is not disturbed by a client sending its next
// request early.
func TestClientGoneCancelsLongHandler(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	watching, sent := make(chan struct{}), make(chan struct{})
	routes := []Route{statusRoute, {Method: "GET", Pattern: "/v1/wait", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
			return r.Context().Err()
		case <-time.After(time.Minute):
			return WriteJSON(w, http.StatusOK, map[string]string{})
		}
	}}, {Method: "GET", Pattern: "/v1/slow", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
		time.Sleep(3 * watchDelay) // long enough for the read-ahead to start
		close(watching)
		<-sent
		time.Sleep(watchDelay) // lets the read-ahead take the next request's first byte, when it runs
		if r.Context().Err() != nil {
			t.Error("slow handler: context cancelled while its client waits")
		}
		return WriteJSON(w, http.StatusOK, map[string]string{"slow": "done"})
	}}}
	sock, _ := startServer(t, Config{}, routes)
	c, _ := rawExchange(t, sock, "GET /v1/wait HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	c.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context was not cancelled after its client went away")
	}

	// The next request arrives while the slow one runs: its first byte,
	// taken by the read-ahead, must reach the parser.
	c, br := rawExchange(t, sock, "GET /v1/slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-watching
	if _, err := io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	close(sent)
	if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 || !strings.Contains(body, "done") {
		t.Fatalf("slow: %d %q", resp.StatusCode, body)
	}
	if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 || !strings.Contains(body, `"ok":"yes"`) {
		t.Fatalf("after slow: %d %q", resp.StatusCode, body)
	}
}

// TestShutdownWaitsForActiveRequest: Shutdown closes idle connections at
// once and lets a running request finish with its answer.
func TestShutdownWaitsForActiveRequest(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	routes := []Route{statusRoute, {Method: "GET", Pattern: "/v1/hold", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
		close(started)
		<-release
		return WriteJSON(w, http.StatusOK, map[string]string{"held": "done"})
	}}}
	sock, s := startServer(t, Config{}, routes)
	_, idle := rawExchange(t, sock, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
	readAnswer(t, idle, "GET")
	_, active := rawExchange(t, sock, "GET /v1/hold HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	if _, err := idle.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection during shutdown: %v, want EOF", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) before the running request finished", err)
	case <-time.After(50 * time.Millisecond): // Shutdown must still be waiting; a wrong early return shows within this
	}
	close(release)
	if resp, body := readAnswer(t, active, "GET"); resp.StatusCode != 200 || !strings.Contains(body, "done") || !resp.Close {
		t.Fatalf("held request: %d %q close %v", resp.StatusCode, body, resp.Close)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestTooLargeBodyAnswered: a client still writing a body over the limit
// reads the too_large answer instead of failing on a closed connection.
func TestTooLargeBodyAnswered(t *testing.T) {
	routes := []Route{{Method: "POST", Pattern: "/v1/x", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
		var v map[string]any
		if err := DecodeJSON(r, &v); err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, v)
	}}}
	sock, _ := startServer(t, Config{MaxBodyBytes: 1024}, routes)
	status, body := do(t, sock, "POST", "/v1/x", `{"pin":"`+strings.Repeat("1", 1<<20)+`"}`)
	if status != http.StatusRequestEntityTooLarge || errorCode(body) != "too_large" {
		t.Fatalf("oversized body: %d %v", status, body)
	}
}

// TestPipelinedAfterLongHandlers: requests pipelined behind several long
// handlers (each gets the read-ahead) while the earlier ones still wait in
// the connection's buffer are each answered as sent: the byte a read-ahead
// takes is never lost to the next one's.
func TestPipelinedAfterLongHandlers(t *testing.T) {
	// A card operation: the body decoded, then a long wait for the card.
	slow := Route{Method: "POST", Pattern: "/v1/slow", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
		var v struct {
			N string `json:"n"`
		}
		if err := DecodeJSON(r, &v); err != nil {
			return err
		}
		time.Sleep(3 * watchDelay) // long enough for the read-ahead to start
		return WriteJSON(w, http.StatusOK, map[string]any{"n": v.N})
	}}
	sock, _ := startServer(t, Config{}, []Route{statusRoute, echoRoute, slow})
	var text strings.Builder
	var want []string
	for i := 0; text.Len() < 3*4096; i++ {
		path := "/v1/echo"
		if i < 3 {
			path = "/v1/slow" // read while the first 4 KiB are buffered
		}
		n := fmt.Sprintf("r%d-%s", i, strings.Repeat("x", 300))
		text.WriteString(strings.Replace(post(`{"n":"`+n+`"}`), "/v1/echo", path, 1))
		want = append(want, "200 "+n)
	}
	_, br := rawExchange(t, sock, text.String())
	for i, a := range readAnswers(t, br, len(want)) {
		if got := summarize(a); got != want[i] {
			t.Fatalf("answer %d: %.60s, want %.60s", i, got, want[i])
		}
	}
}
