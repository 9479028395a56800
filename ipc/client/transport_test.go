package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/apitest"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// countingDialer dials socket and counts the connections it made.
func countingDialer(socket string, n *atomic.Int32) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		n.Add(1)
		return dialSocket(socket)(ctx)
	}
}

// TestConnectionsAreKept: consecutive requests, answers and errors alike,
// share one connection; after the client closes its kept connections, the
// next request dials again.
func TestConnectionsAreKept(t *testing.T) {
	c, dials := overOneConnection(t, countingDialer, 5)
	c.Close()
	if _, err := c.Status(ctx(t)); err != nil || dials.Load() != 2 {
		t.Fatalf("after Close: %v, %d dials", err, dials.Load())
	}
}

// overOneConnection starts a daemon of the PIN routes, sends it rounds of a
// status request and a refused PIN request through a client that dials
// with dialer, and fails unless they all went over one connection. It
// returns the client and its count of dials.
func overOneConnection(t *testing.T, dialer func(socket string, n *atomic.Int32) func(context.Context) (net.Conn, error), rounds int) (*Client, *atomic.Int32) {
	t.Helper()
	tries := 3
	sock := apitest.Start(t, server.Config{}, pinRoutes(&tries))
	dials := new(atomic.Int32)
	c := NewDialer(sock, dialer(sock, dials))
	for range rounds {
		if st, err := c.Status(ctx(t)); err != nil || st.Version == "" {
			t.Fatalf("Status = %+v, %v", st, err)
		}
		if _, err := c.VerifyPIN(ctx(t), "other", []byte("1")); !IsCode(err, ipc.CodeNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d requests dialed %d connections, want 1", 2*rounds, n)
	}
	return c, dials
}

// rawServer accepts connections on a fresh socket and hands each to serve.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	sock := filepath.Join(t.TempDir(), "raw.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(nc)
		}
	}()
	return sock
}

// TestRequestIsNeverSentTwice: a daemon that reads a PIN request and drops
// the connection without answering gets it once; the client reports the
// daemon unreachable instead of sending the PIN again.
func TestRequestIsNeverSentTwice(t *testing.T) {
	var got atomic.Int32
	sock := rawServer(t, func(nc net.Conn) {
		defer nc.Close()
		if _, err := http.ReadRequest(bufio.NewReader(nc)); err == nil {
			got.Add(1)
		}
	})
	_, err := New(sock).VerifyPIN(ctx(t), "piv/1", []byte("123456"))
	var u *UnreachableError
	if !errors.As(err, &u) {
		t.Fatalf("VerifyPIN on a dropped connection = %v, want UnreachableError", err)
	}
	if n := got.Load(); n != 1 {
		t.Fatalf("the daemon received the request %d times, want 1", n)
	}
}

// TestKeptConnectionClosedByDaemon: when the daemon has closed a kept
// connection (its idle timeout), the next request goes over a new one.
func TestKeptConnectionClosedByDaemon(t *testing.T) {
	var conns atomic.Int32
	closed := make(chan struct{}, 3)
	sock := rawServer(t, func(nc net.Conn) {
		defer func() { nc.Close(); closed <- struct{}{} }()
		conns.Add(1)
		if _, err := http.ReadRequest(bufio.NewReader(nc)); err != nil {
			return
		}
		// Answer one request, then close as an idle timeout would.
		_, _ = nc.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n{\"version\":\"test\"}\n"))
	})
	c := New(sock)
	for i := range 3 {
		st, err := c.Status(ctx(t))
		if err != nil || st.Version != "test" {
			t.Fatalf("request %d: %+v, %v", i, st, err)
		}
		<-closed // the kept connection is closed on the daemon's side
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections for 3 requests on a server that closes each, want 3", n)
	}
}

// TestCanceledRequest: a request to a daemon that does not answer ends when
// its context does, with the context's error.
func TestCanceledRequest(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	sock := rawServer(t, func(nc net.Conn) {
		defer nc.Close()
		<-release
	})
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := New(sock).Status(short)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Status on a silent daemon = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

// BenchmarkStatus is one GET /v1/status through the client and the server
// package in this process, on a kept connection.
func BenchmarkStatus(b *testing.B) {
	tries := 3
	c := New(apitest.Start(b, server.Config{}, pinRoutes(&tries)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Status(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// answeringConn answers every request written to it with answer, from
// memory: the client's own work per request, without a socket.
type answeringConn struct {
	net.Conn // nil: only the methods below are used
	answer   []byte
	unread   []byte
}

func (c *answeringConn) Write(p []byte) (int, error) { c.unread = c.answer; return len(p), nil }
func (c *answeringConn) Read(p []byte) (int, error) {
	n := copy(p, c.unread)
	c.unread = c.unread[n:]
	return n, nil
}
func (c *answeringConn) Close() error                { return nil }
func (c *answeringConn) SetDeadline(time.Time) error { return nil }

// BenchmarkStatusClient is the client's share of one GET /v1/status: the
// request written, the answer of a daemon with four backends parsed and
// decoded.
func BenchmarkStatusClient(b *testing.B) {
	st := ipc.Status{Version: "0.1.0-dev", UptimeSeconds: 17, Backends: map[string]ipc.BackendStatus{
		"fido2": {State: ipc.BackendDisabled}, "pcsc": {State: ipc.BackendDisabled},
		"pkcs11": {State: ipc.BackendDisabled}, "tpm": {State: ipc.BackendDisabled}}}
	body, err := server.EncodeJSON(st)
	if err != nil {
		b.Fatal(err)
	}
	answer := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	c := NewDialer("memory", func(context.Context) (net.Conn, error) { return &answeringConn{answer: answer}, nil })
	b.ReportAllocs()
	for b.Loop() {
		got, err := c.Status(context.Background())
		if err != nil || got.Backends["tpm"].State != ipc.BackendDisabled {
			b.Fatalf("%+v, %v", got, err)
		}
	}
}

// TestOnlyGETIsSentAgain: on a kept connection that the daemon ends after
// reading the request, without an answer, a GET is sent again on a new
// connection and answered; a PIN request is not sent again.
func TestOnlyGETIsSentAgain(t *testing.T) {
	var requests atomic.Int32
	pins := make(chan struct{}, 4)
	sock := rawServer(t, func(nc net.Conn) {
		defer nc.Close()
		br := bufio.NewReader(nc)
		// Each connection answers its first request and drops the
		// connection on its second one, unanswered.
		for i := 0; ; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			requests.Add(1)
			if req.Method == http.MethodPost {
				pins <- struct{}{}
			}
			if i == 1 {
				return
			}
			_, _ = nc.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n{\"version\":\"test\"}"))
		}
	})
	c := New(sock)
	for i := range 2 {
		if st, err := c.Status(ctx(t)); err != nil || st.Version != "test" {
			t.Fatalf("status %d: %+v, %v", i, st, err)
		}
	}
	if n := requests.Load(); n != 3 {
		t.Fatalf("the daemon received %d requests for two statuses, want 3 (one sent again)", n)
	}
	// The kept connection has answered once: the PIN request is its
	// second, which it drops.
	_, err := c.VerifyPIN(ctx(t), "piv/1", []byte("123456"))
	var u *UnreachableError
	if !errors.As(err, &u) {
		t.Fatalf("VerifyPIN on a dropped connection = %v, want UnreachableError", err)
	}
	if len(pins) != 1 {
		t.Fatalf("the PIN request reached the daemon %d times, want 1", len(pins))
	}
}
