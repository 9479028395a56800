package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain doubles as a helper process: with HWAUTHD_SERVER_HELPER set it
// acts as another program (another uid, a socket-activated daemon).
func TestMain(m *testing.M) {
	switch os.Getenv("HWAUTHD_SERVER_HELPER") {
	case "get":
		helperGet(os.Getenv("HELPER_SOCKET"), os.Getenv("HELPER_PATH"))
	case "activation":
		helperActivation()
	default:
		os.Exit(m.Run())
	}
}

// helperGet prints, one line each, the status and body of GET of each of
// the comma-separated paths over socket.
func helperGet(socket, paths string) {
	c := unixClient(socket)
	for path := range strings.SplitSeq(paths, ",") {
		resp, err := c.Get("http://hwauthd" + path)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %s\n", resp.StatusCode, bytes.TrimSpace(b))
	}
	os.Exit(0)
}

// helperActivation prints what ActivationListener returns.
func helperActivation() {
	ln, ok, err := ActivationListener()
	if err != nil {
		fmt.Println("error", err)
		os.Exit(0)
	}
	addr := ""
	if ln != nil {
		addr = ln.Addr().String()
	}
	fmt.Printf("ok=%v addr=%s", ok, addr)
	os.Exit(0)
}

// unixClient returns an HTTP client that dials socket.
func unixClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

// startServer serves routes on a socket in a fresh directory and stops the
// server when the test ends. The directory is world-searchable so helpers
// running as other users can connect.
func startServer(t *testing.T, cfg Config, routes []Route) (socket string, s *Server) {
	t.Helper()
	dir := t.TempDir()
	// Up to, not including, os.TempDir(): /tmp keeps its 1777 (a 0755 /tmp
	// breaks every other user of the machine, apt's _apt among them).
	for d := dir; d != os.TempDir() && d != filepath.Dir(d); d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	socket = filepath.Join(dir, "run", "hwauthd.sock")
	ln, err := Listen(socket, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err = New(cfg, routes)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return socket, s
}

// do sends a request and decodes the JSON answer into a map.
func do(t *testing.T, socket, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = stringsReader(body)
	}
	req, err := http.NewRequest(method, "http://hwauthd"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := unixClient(socket).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: decode answer: %v", method, path, err)
	}
	return resp.StatusCode, out
}

// errorCode returns the code of an error envelope, or "".
func errorCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}
