package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// dialHeld opens a connection and sends half a request head, as a client
// that holds a connection without finishing its request.
func dialHeld(t *testing.T, socket string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A connection refused at once may be closed before this write
	// (EPIPE); its busy answer is still there to read.
	_, _ = io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: x\r\n")
	return c
}

// refusedBusy reports whether c was answered busy and closed.
func refusedBusy(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusConflict && strings.Contains(string(b), `"code":"busy"`)
}

// getStatus asks for /v1/status on a fresh connection and returns the
// status code, or 0 when the connection failed.
func getStatus(socket string) int {
	c := unixClient(socket)
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://hwauthd/v1/status")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

var statusRoute = Route{Method: "GET", Pattern: "/v1/status", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
	return WriteJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
}}

// TestConnectionLimits: a peer over its per-user share is answered busy at
// once; the reserve stays for reserved peers; closed connections give their
// slots back.
func TestConnectionLimits(t *testing.T) {
	var reserved atomic.Bool // the test process plays both roles
	cfg := Config{Limits: Limits{MaxConns: 6, MaxConnsPerUser: 3, ReservedConns: 2, Reserved: func(Peer) bool { return reserved.Load() }}}
	sock, _ := startServer(t, cfg, []Route{statusRoute})

	var held []net.Conn
	for range 3 {
		held = append(held, dialHeld(t, sock))
	}
	if !refusedBusy(t, dialHeld(t, sock)) {
		t.Fatal("a fourth connection of the same user was not refused busy")
	}
	// A reserved peer still gets in, beyond the per-user share and into the
	// reserve, up to the global bound.
	reserved.Store(true)
	for range 3 {
		held = append(held, dialHeld(t, sock))
	}
	if !refusedBusy(t, dialHeld(t, sock)) {
		t.Fatal("a connection over the global bound was not refused")
	}
	// Closing the held connections gives their slots back.
	for _, c := range held {
		c.Close()
	}
	reserved.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for getStatus(sock) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("slots of closed connections were not given back")
		}
		runtime.Gosched()
	}
}

// TestReserveForReservedPeers: once the unreserved share is used up, other users are
// refused while a reserved peer is served.
func TestReserveForReservedPeers(t *testing.T) {
	var reserved atomic.Bool
	cfg := Config{Limits: Limits{MaxConns: 4, MaxConnsPerUser: 10, ReservedConns: 2, Reserved: func(Peer) bool { return reserved.Load() }}}
	sock, _ := startServer(t, cfg, []Route{statusRoute})
	dialHeld(t, sock)
	dialHeld(t, sock)
	if !refusedBusy(t, dialHeld(t, sock)) {
		t.Fatal("an unreserved peer got into the reserve")
	}
	reserved.Store(true)
	if got := getStatus(sock); got != http.StatusOK {
		t.Fatalf("reserved peer: status %d, want 200", got)
	}
}

// TestBodyReadDeadline: a body that stops arriving is cut off after
// BodyReadTimeout, while a stream lives on past it.
func TestBodyReadDeadline(t *testing.T) {
	const timeout = 200 * time.Millisecond
	feed := make(chan int)
	routes := []Route{
		{Method: "POST", Pattern: "/v1/x", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			var v map[string]any
			if err := DecodeJSON(r, &v); err != nil {
				return err
			}
			return WriteJSON(w, http.StatusOK, v)
		}},
		{Method: "GET", Pattern: "/v1/events", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			return StreamJSONLines(w, r, func(ctx context.Context) (any, error) {
				select {
				case n := <-feed:
					return map[string]int{"n": n}, nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			})
		}},
	}
	sock, _ := startServer(t, Config{BodyReadTimeout: timeout, ReadHeaderTimeout: timeout}, routes)

	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("half-sent body: status %d, want 400", resp.StatusCode)
	}
	if d := time.Since(start); d > 20*timeout {
		t.Errorf("half-sent body held the connection for %s", d)
	}

	// A stream outlives both read timeouts: the server's read-ahead of an
	// idle stream must not end it.
	sresp, err := unixClient(sock).Get("http://hwauthd/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	<-time.After(3 * timeout)
	select {
	case feed <- 7:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream's handler ended before its first event")
	}
	line, err := bufio.NewReader(sresp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"n":7`) {
		t.Fatalf("stream after the timeouts: %q %v", line, err)
	}
}

// TestStreamsPerUser: a user with StreamsPerUser streams open is answered
// busy for one more.
func TestStreamsPerUser(t *testing.T) {
	routes := []Route{{Method: "GET", Pattern: "/v1/events", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
		return StreamJSONLines(w, r, func(ctx context.Context) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
	}}}
	cfg := Config{Limits: Limits{StreamsPerUser: 2, Reserved: func(Peer) bool { return false }}}
	sock, _ := startServer(t, cfg, routes)
	for range 2 {
		resp, err := unixClient(sock).Get("http://hwauthd/v1/events")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream: status %d", resp.StatusCode)
		}
	}
	status, body := do(t, sock, "GET", "/v1/events", "")
	if status != http.StatusConflict || errorCode(body) != "busy" {
		t.Fatalf("third stream: %d %v, want 409 busy", status, body)
	}
}
