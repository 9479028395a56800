package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/daemon/events"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/apitest"
	"github.com/hwauthd/hwauthd/ipc/server"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// pinRoutes serves a PIN verify route that accepts "123456" and counts
// down tries otherwise.
func pinRoutes(tries *int) []server.Route {
	return []server.Route{
		{Method: "GET", Pattern: "/v1/status", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			n := 2
			return server.WriteJSON(w, 200, ipc.Status{Version: "test", Backends: map[string]ipc.BackendStatus{"pcsc": {State: ipc.BackendUp, Readers: &n}}})
		}},
		{Method: "POST", Pattern: "/v1/authenticators/{id}/pin/verify", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			var req ipc.PINVerifyRequest
			if err := server.DecodeJSON(r, &req); err != nil {
				return err
			}
			defer req.Wipe()
			if r.PathValue("id") != "piv/1" {
				return ipc.Errorf(ipc.CodeNotFound, "no authenticator %s", r.PathValue("id"))
			}
			if !bytes.Equal(req.PIN, []byte(`12"3456`)) {
				*tries--
				return ipc.FromHW(&hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(*tries)})
			}
			return server.WriteJSON(w, 200, ipc.PINResult{RetriesLeft: hwerr.TriesLeft(*tries), Verified: true})
		}},
	}
}

func TestStatusAndPIN(t *testing.T) {
	tries := 3
	c := New(apitest.Start(t, server.Config{}, pinRoutes(&tries)))
	st, err := c.Status(ctx(t))
	if err != nil || st.Version != "test" || *st.Backends["pcsc"].Readers != 2 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	_, err = c.VerifyPIN(ctx(t), "piv/1", []byte("000000"))
	var e *ipc.Error
	if !errors.As(err, &e) || e.Code != ipc.CodePINIncorrect || e.RetriesLeft != hwerr.TriesLeft(2) {
		t.Fatalf("wrong PIN: %v", err)
	}
	var pi *hwerr.PINIncorrect
	if !errors.As(err, &pi) || pi.RetriesLeft != hwerr.TriesLeft(2) {
		t.Fatalf("errors.As PINIncorrect: %v", pi)
	}
	res, err := c.VerifyPIN(ctx(t), "piv/1", []byte(`12"3456`))
	if err != nil || !res.Verified || res.RetriesLeft != hwerr.TriesLeft(2) {
		t.Fatalf("right PIN: %+v %v", res, err)
	}
	if _, err := c.VerifyPIN(ctx(t), "other", []byte("1")); !IsCode(err, ipc.CodeNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := c.Readers(ctx(t)); !IsCode(err, ipc.CodeNotFound) {
		t.Fatalf("route the server lacks: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := New(sock).Status(ctx(t))
	var u *UnreachableError
	if !errors.As(err, &u) || u.Socket != sock || !strings.Contains(err.Error(), "is it running?") ||
		!strings.Contains(err.Error(), "started with --socket "+sock) || strings.Contains(err.Error(), "hwauthd.socket") {
		t.Fatalf("Status on a missing socket = %v", err)
	}
	// A directory is not a socket: said so, not "connection refused".
	dir := t.TempDir()
	_, err = New(dir).Status(ctx(t))
	if !errors.As(err, &u) || !strings.Contains(err.Error(), dir+": it is a directory; name the socket itself") {
		t.Fatalf("Status on a directory = %v", err)
	}
	// The standard socket is served through hwauthd.socket.
	if msg := (&UnreachableError{Socket: DefaultSocketPath, Err: errors.New("x")}).Error(); !strings.Contains(msg, "systemctl status hwauthd.socket") {
		t.Errorf("the standard socket's hint: %s", msg)
	}
}

func TestDefaultSocket(t *testing.T) {
	t.Setenv(SocketEnv, "")
	if New("").SocketPath() != DefaultSocketPath {
		t.Fatal("default socket")
	}
	t.Setenv(SocketEnv, "/tmp/x.sock")
	if New("").SocketPath() != "/tmp/x.sock" {
		t.Fatal("socket from environment")
	}
}

// TestEvents runs the real bus behind the stream helper and reads it back.
func TestEvents(t *testing.T) {
	bus := events.New(16, 16)
	bus.Publish(ipc.Event{Type: ipc.EventReaderAdded, Reader: "r0"})
	routes := []server.Route{{Method: "GET", Pattern: "/v1/events", Access: server.Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
		since, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
		sub, err := bus.Subscribe(since, nil, func() []ipc.Event {
			return []ipc.Event{{Type: ipc.EventReaderAdded, Reader: "r0"}}
		})
		if err != nil {
			return err
		}
		defer sub.Close()
		return server.StreamJSONLines(w, r, func(ctx context.Context) (any, error) { return sub.Next(ctx) })
	}}}
	c := New(apitest.Start(t, server.Config{}, routes))
	sctx, cancel := context.WithCancel(ctx(t))
	st, err := c.Events(sctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := []string{"reader-added/0", "snapshot-done/1"}
	for _, w := range want {
		e, err := st.Next()
		if err != nil || e.Type+"/"+strconv.FormatUint(e.Seq, 10) != w {
			t.Fatalf("event %+v %v, want %s", e, err, w)
		}
	}
	bus.Publish(ipc.Event{Type: ipc.EventCardInserted, Reader: "r0"})
	if e, err := st.Next(); err != nil || e.Type != ipc.EventCardInserted || e.Seq != 2 {
		t.Fatalf("live event %+v %v", e, err)
	}
	cancel()
	if _, err := st.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel = %v", err)
	}
	// Resume from 1 replays event 2.
	st2, err := c.Events(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if e, err := st2.Next(); err != nil || e.Seq != 2 {
		t.Fatalf("resumed %+v %v", e, err)
	}
	// Resuming from the future fails with events_expired.
	if _, err := c.Events(ctx(t), 99); !IsCode(err, ipc.CodeEventsExpired) {
		t.Fatalf("resume from 99 = %v", err)
	}
	bus.Close()
	if _, err := st2.Next(); err != nil {
		t.Fatalf("snapshot-done of resumed stream: %v", err)
	}
	if _, err := st2.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after bus close = %v, want EOF", err)
	}
}
