package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// panicLog records the connection loop's panics, which it recovers and logs.
type panicLog struct {
	slog.Handler
	mu     sync.Mutex
	panics []string
}

func (h *panicLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *panicLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		h.mu.Lock()
		h.panics = append(h.panics, r.Message)
		h.mu.Unlock()
	}
	return nil
}

func (h *panicLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicLog) WithGroup(string) slog.Handler      { return h }

// streamRoute answers a stream of three lines (chunked, flushed).
var streamRoute = Route{Method: "GET", Pattern: "/v1/events", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
	n := 0
	return StreamJSONLines(w, r, func(context.Context) (any, error) {
		if n++; n > 3 {
			return nil, io.EOF
		}
		return map[string]int{"seq": n}, nil
	})
}}

// FuzzConn feeds arbitrary bytes to a connection served by the connection
// loop (status, a JSON body route, a stream) and ends the client's side.
// Whatever the bytes: no panic; every answer is well-formed HTTP/1.1 whose
// body can be read to its end, an error one in the envelope; nothing
// follows an answer that says Connection: close; the server closes the
// connection and its goroutine ends (no connection left tracked).
func FuzzConn(f *testing.F) {
	for _, seed := range []string{
		getStatus1,
		post(`{"n":"a","pin":"12345678"}`) + getStatus1,
		"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n" + getStatus1,
		"HEAD /v1/events HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"n\"\r\n5\r\n:\"c\"}\r\n0\r\n\r\n",
		"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		post(`{"n":"a"}`, "Expect: 100-continue\r\n"),
		post(`{"n":"a"}`, "Expect: x\r\n"),
		"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\n{",
		"GET /v1/status HTTP/1.0\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET //v1/../status HTTP/1.1\r\nHost: x\r\nX: \x00\r\n\r\n",
		"BREW http://x/v1/status HTTP/1.1\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	sock := dir + "/s.sock"
	ln, err := Listen(sock, 0)
	if err != nil {
		f.Fatal(err)
	}
	logs := &panicLog{}
	s, err := New(Config{MaxBodyBytes: 1024, Logger: slog.New(logs), ReadHeaderTimeout: time.Second, BodyReadTimeout: time.Second,
		PeerOf: func(net.Conn) (Peer, error) { return Peer{UID: 0}, nil }},
		[]Route{statusRoute, echoRoute, streamRoute})
	if err != nil {
		f.Fatal(err)
	}
	go func() { _ = s.Serve(context.Background(), ln) }()
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})

	f.Fuzz(func(t *testing.T, in []byte) {
		c := dial(t, sock)
		go func() {
			_, _ = c.Write(in)
			_ = c.(*net.UnixConn).CloseWrite()
		}()
		checkAnswers(t, bufio.NewReader(c), requestMethods(in))
		// The server closed its side; its goroutine ends right after.
		waitNoConns(t, s)
		logs.mu.Lock()
		defer logs.mu.Unlock()
		if len(logs.panics) > 0 {
			t.Fatalf("panics: %q", logs.panics)
		}
	})
}

// requestMethods parses in as the server does and returns the method of
// each request it holds, in order, up to the first it cannot parse.
func requestMethods(in []byte) []string {
	br := bufio.NewReader(strings.NewReader(string(in)))
	var methods []string
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return methods
		}
		methods = append(methods, req.Method)
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return methods
		}
	}
}

// checkAnswers reads answers until the server ends the connection; answer
// i is to a request of methods[i] where known (HEAD answers have no body).
func checkAnswers(t *testing.T, br *bufio.Reader, methods []string) {
	t.Helper()
	for i := 1; ; i++ {
		if _, err := br.Peek(1); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("after %d answers: %v, want the server to close the connection", i-1, err)
			}
			return
		}
		req := &http.Request{Method: http.MethodGet}
		if i <= len(methods) {
			req.Method = methods[i-1]
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("answer %d (to %s) is not well-formed: %v", i, req.Method, err)
		}
		if resp.StatusCode == http.StatusContinue {
			i--
			continue
		}
		if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 || resp.StatusCode < 200 || resp.StatusCode > 599 {
			t.Fatalf("answer %d: %s %d", i, resp.Proto, resp.StatusCode)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("answer %d (%d to %s): body: %v", i, resp.StatusCode, req.Method, err)
		}
		if resp.StatusCode >= 400 && req.Method != http.MethodHead {
			var e struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" {
				t.Fatalf("answer %d: %d without the envelope: %q", i, resp.StatusCode, b)
			}
		}
		if resp.Close {
			if n, _ := br.Read(make([]byte, 1)); n > 0 {
				t.Fatalf("bytes after answer %d, which said Connection: close", i)
			}
			return
		}
	}
}

// waitNoConns waits until s serves no connection, failing the test when
// one is still served after 10 s.
func waitNoConns(t *testing.T, s *Server) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		s.mu.Lock()
		left := len(s.conns)
		s.mu.Unlock()
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still served after their clients ended", left)
		}
		time.Sleep(time.Millisecond) // polling the server's own count; nothing to wait on
	}
}
