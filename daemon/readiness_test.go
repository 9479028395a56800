package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/client"
	"github.com/hwauthd/hwauthd/store/boltstore"
)

// slowBackend enumerates when its test says so, and says what it is doing
// until then.
type slowBackend struct {
	name  string
	first device.FirstScan
}

func (b *slowBackend) Name() string                                 { return b.name }
func (b *slowBackend) Enumerated() <-chan struct{}                  { return b.first.Enumerated() }
func (b *slowBackend) Run(ctx context.Context, _ device.Host) error { <-ctx.Done(); return nil }
func (b *slowBackend) Status() device.Status {
	if b.first.IsDone() {
		return device.Status{State: device.StateUp}
	}
	return device.Status{State: device.StateUp, Detail: "reading the card in Reader 0"}
}

// runDaemon runs a daemon with backends on a fresh socket and returns a
// client for it; the daemon stops when the test ends.
func runDaemon(t *testing.T, readyTimeout time.Duration, bs ...device.Backend) *client.Client {
	t.Helper()
	dir := t.TempDir()
	st, err := boltstore.Open(filepath.Join(dir, "hwauthd.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d, err := New(Options{Config: config.Defaults(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store: st, Backends: bs, ReadyTimeout: readyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "hwauthd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return client.New(sock)
}

// TestFirstAnswerWaitsForEnumeration: a request sent while a backend has not
// enumerated is answered only once it has.
func TestFirstAnswerWaitsForEnumeration(t *testing.T) {
	b := &slowBackend{name: "pcsc"}
	c := runDaemon(t, time.Minute, b)
	answered := make(chan *ipc.Status, 1)
	go func() {
		st, err := c.Status(context.Background())
		if err != nil {
			t.Errorf("status: %v", err)
		}
		answered <- st
	}()
	// The request is accepted by the listener's queue but not answered.
	select {
	case st := <-answered:
		t.Fatalf("answered before the backend enumerated: %+v", st)
	case <-time.After(100 * time.Millisecond):
	}
	b.first.Done()
	select {
	case st := <-answered:
		if got := st.Backends["pcsc"]; got.State != ipc.BackendUp || got.Detail != "" {
			t.Errorf("after enumeration pcsc is %+v, want up", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer after the backend enumerated")
	}
}

// TestReadyTimeoutNamesBackendStillStarting: past the ready timeout the
// daemon serves, and the status shows the backend that is still starting
// and what it is doing; the others are shown as they are.
func TestReadyTimeoutNamesBackendStillStarting(t *testing.T) {
	notes := notifySocket(t)
	slow, quick := &slowBackend{name: "pcsc"}, &slowBackend{name: "fido2"}
	quick.first.Done()
	c := runDaemon(t, 50*time.Millisecond, slow, quick)
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := ipc.BackendStatus{State: ipc.BackendDown, Detail: "starting: reading the card in Reader 0"}
	if got := st.Backends["pcsc"]; got != want {
		t.Errorf("pcsc = %+v, want %+v", got, want)
	}
	if got := st.Backends["fido2"]; got.State != ipc.BackendUp {
		t.Errorf("fido2 = %+v, want up", got)
	}
	// systemd is told as well, and told again when the backend is done.
	for _, want := range []string{"STATUS=serving; still starting: pcsc (reading the card in Reader 0)", "READY=1"} {
		if got := nextNote(t, notes); got != want {
			t.Errorf("sd_notify %q, want %q", got, want)
		}
	}
	slow.first.Done()
	if got := nextNote(t, notes); got != "STATUS=serving" {
		t.Errorf("sd_notify after the backend enumerated: %q", got)
	}
	if st, err = c.Status(context.Background()); err != nil || st.Backends["pcsc"].State != ipc.BackendUp {
		t.Errorf("after enumeration pcsc = %+v, %v", st.Backends["pcsc"], err)
	}
}

// notifySocket points NOTIFY_SOCKET at a datagram socket of the test, as
// systemd does for a Type=notify service, and returns it.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// nextNote returns the next sd_notify message.
func nextNote(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no sd_notify message: %v", err)
	}
	return string(buf[:n])
}
