package server

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
)

// loopConn serves the same request n times, one after the other, and
// discards the answers: the connection loop's own work per request.
type loopConn struct {
	req     []byte
	pending []byte
	n       int
	written int
}

func (c *loopConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		if c.n == 0 {
			return 0, io.EOF
		}
		c.n--
		c.pending = c.req
	}
	k := copy(p, c.pending)
	c.pending = c.pending[k:]
	return k, nil
}
func (c *loopConn) Write(p []byte) (int, error)      { c.written += len(p); return len(p), nil }
func (c *loopConn) Close() error                     { return nil }
func (c *loopConn) LocalAddr() net.Addr              { return &net.UnixAddr{Name: "loop", Net: "unix"} }
func (c *loopConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Name: "loop", Net: "unix"} }
func (c *loopConn) SetDeadline(time.Time) error      { return nil }
func (c *loopConn) SetReadDeadline(time.Time) error  { return nil }
func (c *loopConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkServeStatus is the connection loop's work for one GET of a
// status answer kept encoded, on a kept connection, without the socket.
func BenchmarkServeStatus(b *testing.B) {
	st := ipc.Status{Version: "0.1.0-dev", UptimeSeconds: 17, Backends: map[string]ipc.BackendStatus{
		"fido2": {State: ipc.BackendDisabled}, "pcsc": {State: ipc.BackendDisabled},
		"pkcs11": {State: ipc.BackendDisabled}, "tpm": {State: ipc.BackendDisabled}}}
	body, err := EncodeJSON(st) // the daemon sends its status answer again while the status is unchanged
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Logger: slog.New(slog.DiscardHandler)}, []Route{{Method: "GET", Pattern: "/v1/status", Access: Anyone,
		Handler: func(w http.ResponseWriter, r *http.Request) error { return WriteEncodedJSON(w, http.StatusOK, body) }}})
	if err != nil {
		b.Fatal(err)
	}
	lc := &loopConn{req: []byte("GET /v1/status HTTP/1.1\r\nHost: hwauthd\r\n\r\n"), n: b.N}
	sc := &serverConn{s: s, c: &peerConn{Conn: lc, peer: Peer{UID: 1000, GID: 1000}}, cr: connReader{c: nil, remain: -1}}
	sc.cr.c = sc.c
	s.track(sc)
	b.ReportAllocs()
	b.ResetTimer()
	sc.serve()
	if lc.written < b.N*300 {
		b.Fatalf("wrote %d bytes for %d requests", lc.written, b.N)
	}
}
