package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// closedWithin reads c until the server closes it and returns how long that
// took from start; the client keeps sending one byte of trickle every
// period meanwhile, when trickle is not empty.
func closedWithin(t *testing.T, c net.Conn, start time.Time, trickle string, period time.Duration) time.Duration {
	t.Helper()
	done := make(chan struct{})
	defer close(done)
	if trickle != "" {
		go func() {
			tick := time.NewTicker(period)
			defer tick.Stop()
			for i := 0; ; i = (i + 1) % len(trickle) {
				select {
				case <-done:
					return
				case <-tick.C:
					if _, err := c.Write([]byte{trickle[i]}); err != nil {
						return
					}
				}
			}
		}()
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %s", time.Since(start))
	}
	return time.Since(start)
}

// TestConnSlowClients: the head must arrive within ReadHeaderTimeout however
// steadily its bytes trickle in (slowloris), the body (chunked too) within
// BodyReadTimeout, and a kept-alive connection with no next request ends
// after IdleTimeout; a client's trickle never extends them.
func TestConnSlowClients(t *testing.T) {
	const timeout = 200 * time.Millisecond
	sock, _ := startServer(t, Config{ReadHeaderTimeout: timeout, BodyReadTimeout: timeout, IdleTimeout: 2 * timeout},
		[]Route{statusRoute, echoRoute})
	cases := []struct {
		name, first, trickle string
		least                time.Duration
	}{
		{"head trickled", "GET /v1/status HTTP/1.1\r\n", "X-A: b\r\n", timeout},
		{"head never ends", "GET /v1/status HTTP/1.1\r\nHost: x\r\n", "", timeout},
		{"body trickled", "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", `{"n":"`, timeout},
		{"chunked body trickled", "POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "1\r\n \r\n", timeout},
		{"idle after an answer", getStatus1, "", 2 * timeout},
		// After an idle wait, a head that starts has ReadHeaderTimeout
		// from its first byte, not what is left of the idle timeout.
		{"head trickled after an answer", getStatus1 + "G", "ET /v1/status HTTP/1.1\r\nX-A: b\r\n", timeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, sock)
			start := time.Now()
			if _, err := io.WriteString(c, tc.first); err != nil {
				t.Fatal(err)
			}
			d := closedWithin(t, c, start, tc.trickle, timeout/8)
			// The server's clock starts at its accept, which may come
			// before start: a quarter of the timeout of slack below.
			if lo, hi := tc.least*3/4, tc.least+20*timeout; d < lo || d > hi {
				t.Errorf("closed after %s, want between %s and %s", d, lo, hi)
			}
		})
	}
	if status := getStatus(sock); status != http.StatusOK {
		t.Fatalf("status after the slow clients: %d", status)
	}
}

// TestConnClientNotReading: a client that pipelines requests without ever
// reading an answer is held back by the socket: once its answers fill the
// socket buffers the server stops reading, and the client cannot push more
// than those buffers hold, however much it tries to send. When it goes away,
// its connection ends; while it stays, its connection ends WriteTimeout
// after the write that could not finish.
func TestConnClientNotReading(t *testing.T) {
	for _, stays := range []bool{false, true} {
		cfg := Config{}
		if stays {
			cfg.WriteTimeout = 200 * time.Millisecond
		}
		sock, s := startServer(t, cfg, []Route{statusRoute})
		c := fillWithoutReading(t, sock)
		if !stays {
			c.Close()
		}
		// waitNoConns gives up after 10 s, the default WriteTimeout.
		waitNoConns(t, s)
	}
}

// fillWithoutReading pipelines requests on a new connection without reading
// an answer until the server stops taking them, and checks that it stopped
// long before the client did. The connection is closed when the test ends.
func fillWithoutReading(t *testing.T, sock string) net.Conn {
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	batch := []byte(strings.Repeat(getStatus1, 1000))
	const try = 64 << 20
	written := 0
	_ = c.SetWriteDeadline(time.Now().Add(time.Second)) // how long the client tries; the server's answers block it long before
	for written < try {
		n, err := c.Write(batch)
		written += n
		if err != nil {
			break
		}
	}
	if written >= 16<<20 {
		t.Fatalf("the server took %d MiB of requests from a client that reads no answer", written>>20)
	}
	t.Logf("a client reading no answer got %d KiB of requests in", written>>10)
	return c
}

// TestShutdownWithPipelinedAndStream: a graceful shutdown lets the request
// being handled finish with Connection: close, serves none of the requests
// pipelined behind it, and ends an open stream with its last chunk.
func TestShutdownWithPipelinedAndStream(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	hold := Route{Method: "GET", Pattern: "/v1/hold", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
		close(started)
		<-release
		return WriteJSON(w, http.StatusOK, map[string]string{"ok": "held"})
	}}
	stream := Route{Method: "GET", Pattern: "/v1/events", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
		return StreamJSONLines(w, r, func(ctx context.Context) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
	}}
	sock, s := startServer(t, Config{}, []Route{statusRoute, hold, stream})
	_, sbr := rawExchange(t, sock, "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
	sresp, err := http.ReadResponse(sbr, nil)
	if err != nil || sresp.StatusCode != 200 {
		t.Fatalf("stream: %v", err)
	}
	_, br := rawExchange(t, sock, "GET /v1/hold HTTP/1.1\r\nHost: x\r\n\r\n"+getStatus1+getStatus1)
	<-started
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	// The stream ends cleanly (its last chunk) as Shutdown cancels it.
	if b, err := io.ReadAll(sresp.Body); err != nil || len(b) != 0 {
		t.Fatalf("stream at shutdown: %q %v, want a clean end", b, err)
	}
	close(release)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || !resp.Close || !strings.Contains(string(body), "held") {
		t.Fatalf("held request at shutdown: %d %q %v close %v", resp.StatusCode, body, err, resp.Close)
	}
	if _, err := br.Peek(1); !errors.Is(err, io.EOF) {
		t.Fatalf("after the held answer: %v, want EOF (the pipelined requests are not served)", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// deadlineListener hands out connections that record their last write
// deadline (0 when cleared).
type deadlineListener struct {
	net.Listener
	last atomic.Int64
}

func (l *deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &deadlineConn{Conn: c, l: l}, nil
}

type deadlineConn struct {
	net.Conn
	l *deadlineListener
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.l.last.Store(unixNanoOrZero(t))
	return c.Conn.SetWriteDeadline(t)
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.l.last.Store(unixNanoOrZero(t))
	return c.Conn.SetDeadline(t)
}

func unixNanoOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// TestWritesLeaveNoDeadline: once an answer or a stream's line is written,
// the connection keeps no write deadline, whose timer would wake an idle
// daemon (a quiet event stream, a kept-alive connection) when it expires.
func TestWritesLeaveNoDeadline(t *testing.T) {
	stream := Route{Method: "GET", Pattern: "/v1/events", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
		sent := false
		return StreamJSONLines(w, r, func(ctx context.Context) (any, error) {
			if !sent {
				sent = true
				return map[string]string{"type": "hello"}, nil
			}
			<-ctx.Done()
			return nil, ctx.Err()
		})
	}}
	ln, err := Listen(t.TempDir()+"/s.sock", 0)
	if err != nil {
		t.Fatal(err)
	}
	dl := &deadlineListener{Listener: ln}
	s, err := New(Config{Logger: discardLogger(), PeerOf: func(net.Conn) (Peer, error) { return Peer{UID: 1000}, nil }}, []Route{statusRoute, stream})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, dl) }()
	t.Cleanup(func() { cancel(); <-served })
	cleared := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); dl.last.Load() != 0; {
			if time.Now().After(deadline) {
				t.Fatalf("after %s the connection keeps a write deadline %s ahead", what, time.Until(time.Unix(0, dl.last.Load())).Round(time.Second))
			}
			time.Sleep(time.Millisecond) // polling the connection's own deadline; nothing to wait on
		}
	}
	c, br := rawExchange(t, ln.Addr().String(), getStatus1)
	if resp, _ := readAnswer(t, br, "GET"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %d", resp.StatusCode)
	}
	cleared("an answer")
	if _, err := io.WriteString(c, "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v", err)
	}
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.Contains(line, "hello") {
		t.Fatalf("stream's line: %q %v", line, err)
	}
	cleared("a stream's line")
}
