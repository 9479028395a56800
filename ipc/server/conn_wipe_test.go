package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingListener hands out connections that remember every buffer the
// server read them into (to its capacity: bufio moves unread bytes to its
// start), and signals when the server closes them.
type recordingListener struct {
	net.Listener
	mu     sync.Mutex
	bufs   [][]byte
	closed chan struct{}
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, l: l}, nil
}

type recordingConn struct {
	net.Conn
	l    *recordingListener
	once sync.Once
}

func (c *recordingConn) Read(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.bufs = append(c.l.bufs, p[:cap(p)])
	c.l.mu.Unlock()
	return c.Conn.Read(p)
}

func (c *recordingConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.closed <- struct{}{} })
	return err
}

// TestPINZeroedOnEveryPath: whatever becomes of a request carrying a PIN
// (decoded, pipelined, sent after 100 Continue, cut short, malformed,
// refused as too large, sent to a path or method that does not exist, to a
// route that never reads it), once its connection has ended no buffer the
// server read the connection into still holds the PIN.
func TestPINZeroedOnEveryPath(t *testing.T) {
	_, rl, sock := startRecordingServer(t)

	pinBody := func(pin string) string { return `{"n":"x","pin":"` + pin + `"}` }
	closeHdr := "Connection: close\r\n"
	cases := []struct {
		name string
		// send writes the requests carrying pins to c.
		send func(t *testing.T, c net.Conn, br *bufio.Reader, pins []string)
		npin int
	}{
		{"decoded", func(t *testing.T, c net.Conn, br *bufio.Reader, pins []string) {
			write(t, c, post(pinBody(pins[0]), closeHdr))
		}, 1},
		{"pipelined in one write", func(t *testing.T, c net.Conn, br *bufio.Reader, pins []string) {
			write(t, c, post(pinBody(pins[0]))+post(pinBody(pins[1]))+getStatus1+post(pinBody(pins[2]), closeHdr))
		}, 3},
		{"pipelined, split mid-PIN", func(t *testing.T, c net.Conn, br *bufio.Reader, pins []string) {
			text := post(pinBody(pins[0])) + post(pinBody(pins[1]), closeHdr)
			cut := strings.Index(text, pins[1]) + 4
			write(t, c, text[:cut])
			write(t, c, text[cut:])
		}, 2},
		{"100-continue", func(t *testing.T, c net.Conn, br *bufio.Reader, pins []string) {
			body := pinBody(pins[0])
			write(t, c, fmt.Sprintf("POST /v1/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: %d\r\n\r\n", len(body)))
			if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, " 100 ") {
				t.Fatalf("before the body: %q %v", line, err)
			}
			write(t, c, body)
		}, 1},
		{"chunked in one chunk", func(t *testing.T, c net.Conn, br *bufio.Reader, pins []string) {
			body := pinBody(pins[0])
			write(t, c, fmt.Sprintf("POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body))
		}, 1},
		{"cut short", func(t *testing.T, c net.Conn, br *bufio.Reader, pins []string) {
			write(t, c, "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"+pinBody(pins[0]))
			_ = c.(*net.UnixConn).CloseWrite()
		}, 1},
		{"malformed JSON after the PIN", func(t *testing.T, c net.Conn, br *bufio.Reader, pins []string) {
			write(t, c, post(`{"pin":"`+pins[0]+`", x}`)+post(pinBody(pins[1]), closeHdr))
		}, 2},
		{"over the limit", func(t *testing.T, c net.Conn, br *bufio.Reader, pins []string) {
			write(t, c, post(`{"pin":"`+pins[0]+`","n":"`+strings.Repeat("n", 2048)+`"}`))
		}, 1},
		{"no such path", func(t *testing.T, c net.Conn, br *bufio.Reader, pins []string) {
			body := pinBody(pins[0])
			write(t, c, fmt.Sprintf("POST /v1/nothing HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)+getStatus1+
				strings.Replace(post(pinBody(pins[1]), closeHdr), "POST", "PUT", 1))
		}, 2},
		{"not canonical", func(t *testing.T, c net.Conn, br *bufio.Reader, pins []string) {
			write(t, c, strings.Replace(post(pinBody(pins[0]), closeHdr), "/v1/echo", "/v1/x/../echo", 1))
		}, 1},
		{"route that reads no body", func(t *testing.T, c net.Conn, br *bufio.Reader, pins []string) {
			body := pinBody(pins[0])
			write(t, c, fmt.Sprintf("GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
		}, 1},
		{"unsupported Expect", func(t *testing.T, c net.Conn, br *bufio.Reader, pins []string) {
			write(t, c, post(pinBody(pins[0]), "Expect: 200-ok\r\n"))
		}, 1},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pins := make([]string, tc.npin)
			for k := range pins {
				pins[k] = fmt.Sprintf("%02d%02d%04d", 17+i, k, 4711+31*i)
			}
			rl.mu.Lock()
			rl.bufs = nil
			rl.mu.Unlock()
			c := dial(t, sock)
			br := bufio.NewReader(c)
			tc.send(t, c, br, pins)
			if _, err := io.Copy(io.Discard, br); err != nil {
				t.Fatalf("reading the answers: %v", err)
			}
			<-rl.closed // the server is done with the connection
			rl.mu.Lock()
			defer rl.mu.Unlock()
			for _, pin := range pins {
				for _, b := range rl.bufs {
					if i := bytes.Index(b, []byte(pin)); i >= 0 {
						t.Errorf("PIN %s left in a read buffer: %q", pin, b[max(0, i-200):min(len(b), i+40)])
						break
					}
				}
			}
		})
	}
}

// write writes text to c or fails the test.
func write(t *testing.T, c net.Conn, text string) {
	t.Helper()
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatal(err)
	}
}

// discardLogger drops every record.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// givenBuffers is a reader of a fixed text, in reads of at most 100 bytes,
// that remembers every buffer it was given to read into.
type givenBuffers struct {
	rest  []byte
	given [][]byte
}

func (g *givenBuffers) Read(p []byte) (int, error) {
	g.given = append(g.given, p[:cap(p)])
	if len(g.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 100)], g.rest)
	g.rest = g.rest[n:]
	return n, nil
}

// TestReadAllWipedLeavesNoOutgrownBuffer: a body larger than the first
// buffer (a PIN request padded past 512 bytes) leaves no copy of its start
// in the buffers it outgrew; with a Content-Length it needs one buffer.
func TestReadAllWipedLeavesNoOutgrownBuffer(t *testing.T) {
	body := `{"pin":"73917391","label":"` + strings.Repeat(" ", 3000) + `"}`
	for _, hint := range []int64{-1, 0, int64(len(body))} {
		g := &givenBuffers{rest: []byte(body)}
		got, err := readAllWiped(g, hint)
		if err != nil || string(got) != body {
			t.Fatalf("hint %d: read %d bytes, %v", hint, len(got), err)
		}
		final := got[:cap(got)]
		for _, b := range g.given {
			if &b[cap(b)-1] == &final[cap(final)-1] {
				continue // the buffer returned, the caller's to zero
			}
			if bytes.Contains(b, []byte("73917391")) {
				t.Errorf("hint %d: the PIN is left in an outgrown buffer of %d bytes", hint, cap(b))
			}
		}
		if buffers := len(g.given); hint > 0 && buffers > (len(body)+99)/100+1 {
			t.Errorf("hint %d: %d reads for %d bytes: the buffer grew", hint, buffers, len(body))
		}
	}
}

// TestWipeKeepsPipelinedBodies: zeroing a body where it was read leaves the
// identical bodies of the requests pipelined after it alone (they are not
// read yet), and a body of zero bytes, already "zeroed", is answered too.
func TestWipeKeepsPipelinedBodies(t *testing.T) {
	slow := echoRoute
	slow.Pattern = "/v1/slow"
	inner := echoRoute.Handler
	slow.Handler = func(w http.ResponseWriter, r *http.Request) error {
		time.Sleep(3 * watchDelay) // long enough for the read-ahead to start
		return inner(w, r)
	}
	sock, _ := startServer(t, Config{}, []Route{statusRoute, echoRoute, slow})
	for _, path := range []string{"/v1/echo", "/v1/slow"} {
		body := `{"n":"same","pin":"12345678"}`
		req := post(body)
		req = strings.Replace(req, "/v1/echo", path, 1)
		_, br := rawExchange(t, sock, req+req+getStatus1+req)
		var got []string
		for _, a := range readAnswers(t, br, 4) {
			got = append(got, summarize(a))
		}
		if want := "200 same, 200 same, 200 ok, 200 same"; strings.Join(got, ", ") != want {
			t.Errorf("%s: answers %q, want %s", path, got, want)
		}
	}
	for _, body := range []string{"\x00", strings.Repeat("\x00", 300)} {
		for _, head := range []string{post(body), strings.Replace(post(body), "POST /v1/echo", "GET /v1/status", 1)} {
			_, br := rawExchange(t, sock, head+getStatus1)
			var got []string
			for _, a := range readAnswers(t, br, 2) {
				got = append(got, summarize(a))
			}
			if got[1] != "200 ok" {
				t.Errorf("%.40q: answers %q", head, got)
			}
		}
	}
}

// TestIdleConnectionKeepsNothing: once a connection has answered every
// request it was sent and waits for the next, no buffer the server read it
// into holds a byte the client sent (PINs above all), whatever path the
// bytes took; a PIN left by a body split around the read-ahead's byte would
// otherwise stay there for as long as the connection idles.
func TestIdleConnectionKeepsNothing(t *testing.T) {
	s, rl, sock := startRecordingServer(t)
	pinBody := func(pin string) string { return `{"n":"x","pin":"` + pin + `"}` }
	for _, tc := range []struct {
		name    string
		text    []string // written one after the other
		answers int
	}{
		{"one PIN", []string{post(pinBody("31415926"))}, 1},
		{"pipelined", []string{post(pinBody("27182818")) + getStatus1 + post(pinBody("16180339"))}, 3},
		{"split mid-PIN", splitAt(post(pinBody("14142135")), "2135"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl.mu.Lock()
			rl.bufs = nil
			rl.mu.Unlock()
			c := dial(t, sock)
			defer c.Close()
			br := bufio.NewReader(c)
			for _, text := range tc.text {
				write(t, c, text)
			}
			for range tc.answers {
				rsp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, rsp.Body)
				rsp.Body.Close()
				if rsp.StatusCode != http.StatusOK {
					t.Fatalf("answer %s", rsp.Status)
				}
			}
			waitIdle(t, s)
			rl.mu.Lock()
			defer rl.mu.Unlock()
			if len(rl.bufs) == 0 {
				t.Fatal("no read recorded")
			}
			for _, b := range rl.bufs {
				if i := bytes.IndexFunc(b, func(r rune) bool { return r != 0 }); i >= 0 {
					t.Fatalf("an idle connection's read buffer still holds %q", bytes.TrimRight(b[i:], "\x00"))
				}
			}
		})
	}
}

// waitIdle waits until every connection of s waits for its next request
// (the server has finished with the last one), or fails t after 10 s.
func waitIdle(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		idle := len(s.conns) > 0
		for sc := range s.conns {
			idle = idle && sc.state == stateIdle
		}
		s.mu.Unlock()
		if idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the connection did not become idle")
		}
		runtime.Gosched()
	}
}

// splitAt cuts text where at starts.
func splitAt(text, at string) []string {
	i := strings.Index(text, at)
	return []string{text[:i], text[i:]}
}

// startRecordingServer serves the status and echo routes (a body limit of
// 1 KiB, every peer uid 1000) on a socket whose connections record the
// buffers the server reads them into; it returns the server, the listener
// and the socket's path.
func startRecordingServer(t *testing.T) (*Server, *recordingListener, string) {
	t.Helper()
	dir := t.TempDir()
	ln, err := Listen(dir+"/s.sock", 0)
	if err != nil {
		t.Fatal(err)
	}
	rl := &recordingListener{Listener: ln, closed: make(chan struct{}, 1)}
	s, err := New(Config{MaxBodyBytes: 1024, Logger: discardLogger(), PeerOf: func(net.Conn) (Peer, error) { return Peer{UID: 1000}, nil }},
		[]Route{statusRoute, echoRoute})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(t.Context(), rl) }()
	return s, rl, dir + "/s.sock"
}
