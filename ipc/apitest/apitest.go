// Package apitest starts an ipc/server on a private Unix socket for tests
// of API clients and handlers, and stops it when the test ends.
package apitest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/ipc/server"
)

// Start serves routes with cfg on a socket in a fresh temporary directory and
// returns the socket's path. The server shuts down when the test ends; a nil
// cfg.Logger discards logs.
func Start(t testing.TB, cfg server.Config, routes []server.Route) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "hwauthd.sock")
	ln, err := server.Listen(socket, 0)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := server.New(cfg, routes)
	if err != nil {
		ln.Close()
		t.Fatalf("apitest: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("apitest: shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("apitest: serve: %v", err)
		}
	})
	return socket
}
