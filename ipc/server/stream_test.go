package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestStreamJSONLines(t *testing.T) {
	feed := make(chan int)
	ended := make(chan struct{})
	routes := []Route{{Method: "GET", Pattern: "/v1/events", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
		defer close(ended)
		return StreamJSONLines(w, r, func(ctx context.Context) (any, error) {
			select {
			case n, ok := <-feed:
				if !ok {
					return nil, io.EOF
				}
				return map[string]int{"n": n}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
	}}}
	sock, s := startServer(t, Config{}, routes)
	resp, err := unixClient(sock).Get("http://hwauthd/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("content type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	for i := range 3 {
		feed <- i // each line must arrive before the next is produced
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]int
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["n"] != i {
			t.Fatalf("line %d = %q (%v)", i, line, err)
		}
	}
	// Shutdown ends the stream: the handler returns and the body ends.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	case <-ctx.Done():
		t.Fatal("stream handler did not end on shutdown")
	}
	if _, err := rd.ReadString('\n'); err == nil {
		t.Fatal("stream still open after shutdown")
	}
}

func TestNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := NotifyReady(); err != nil {
		t.Fatalf("NotifyReady without NOTIFY_SOCKET: %v", err)
	}
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	for _, c := range []struct {
		f    func() error
		want string
	}{{NotifyReady, "READY=1"}, {NotifyStopping, "STOPPING=1"}, {NotifyWatchdog, "WATCHDOG=1"}, {func() error { return NotifyStatus("up") }, "STATUS=up"}} {
		if err := c.f(); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != c.want {
			t.Fatalf("got %q %v, want %q", buf[:n], err, c.want)
		}
	}
	t.Setenv("WATCHDOG_USEC", "4000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if d, err := WatchdogInterval(); err != nil || d != 2*time.Second {
		t.Fatalf("WatchdogInterval = %v %v, want 2s", d, err)
	}
}
