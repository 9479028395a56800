package daemon

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/client"
	"github.com/hwauthd/hwauthd/ipc/server"
	"github.com/hwauthd/hwauthd/store/boltstore"
)

// TestShutdownEndsEverySessionForEveryWatcher stops a daemon with many
// sessions and many connected watchers, again and again: every watcher
// receives every session's session-ended with reason shutdown before its
// stream ends, although the sessions outnumber a watcher's event buffer.
// The rounds are enough to catch a loss of one run in forty (issue 17).
func TestShutdownEndsEverySessionForEveryWatcher(t *testing.T) {
	const rounds, watchers, nSessions = 60, 16, 24
	for round := range rounds {
		shutdownRound(t, round, watchers, nSessions)
		if t.Failed() {
			return
		}
	}
}

func shutdownRound(t *testing.T, round, watchers, nSessions int) {
	t.Helper()
	dir := t.TempDir()
	st, err := boltstore.Open(filepath.Join(dir, "hwauthd.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := config.Defaults()
	cfg.API.EventBuffer = 8 // fewer than the sessions that end at shutdown
	d, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "hwauthd.sock")
	ln, err := server.Listen(socket, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, ln) }()

	want := map[string]bool{}
	for i := range nSessions {
		s, err := d.sessions.Start("user", "piv:test", time.Hour, []byte{byte(i)}, false)
		if err != nil {
			t.Fatal(err)
		}
		want[s.ID] = true
	}
	c := client.New(socket)
	type result struct {
		ended map[string]string
		err   error
	}
	results := make(chan result, watchers)
	ready := make(chan struct{}, watchers)
	for range watchers {
		go func() {
			stream, err := c.Events(context.Background(), 0)
			if err != nil {
				ready <- struct{}{}
				results <- result{err: err}
				return
			}
			defer stream.Close()
			ended := map[string]string{}
			for {
				e, err := stream.Next()
				if err == io.EOF {
					results <- result{ended: ended}
					return
				}
				if err != nil {
					results <- result{err: err}
					return
				}
				switch e.Type {
				case ipc.EventSnapshotDone:
					ready <- struct{}{}
				case ipc.EventSessionEnded:
					ended[e.Session] = e.Reason
				case ipc.EventDropped:
					results <- result{err: io.ErrUnexpectedEOF}
					return
				}
			}
		}()
	}
	for range watchers {
		<-ready
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("round %d: daemon: %v", round, err)
	}
	for w := range watchers {
		r := <-results
		if r.err != nil {
			t.Errorf("round %d, watcher %d: %v", round, w, r.err)
			continue
		}
		for id := range want {
			if r.ended[id] != signin.EndShutdown {
				t.Errorf("round %d, watcher %d: session %s ended with %q, want %q (saw %d of %d)", round, w, id, r.ended[id], signin.EndShutdown, len(r.ended), len(want))
				break
			}
		}
	}
	if _, err := d.sessions.Start("user", "piv:test", time.Hour, nil, false); err == nil {
		t.Errorf("round %d: a session started after shutdown", round)
	}
}
