package daemon_test

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/hwauthd/hwauthd/daemon/daemontest"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/ipc"
)

// changingBackend reports the status its test sets.
type changingBackend struct {
	first device.FirstScan
	mu    sync.Mutex
	st    device.Status
}

func (b *changingBackend) Name() string                                 { return "fido2" }
func (b *changingBackend) Enumerated() <-chan struct{}                  { return b.first.Enumerated() }
func (b *changingBackend) Run(ctx context.Context, _ device.Host) error { <-ctx.Done(); return nil }
func (b *changingBackend) Status() device.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}
func (b *changingBackend) set(st device.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.st = st
}

// TestStatusAnswerNeverStale: the daemon sends its last status answer again
// while nothing changed; a change (here a backend's state, then its device
// count) shows in the very next answer, and every caller gets the same
// answer (the status holds nothing of the caller's).
func TestStatusAnswerNeverStale(t *testing.T) {
	b := &changingBackend{st: device.Status{State: device.StateUp}}
	b.first.Done()
	h := daemontest.NewWith(t, daemontest.Fakes{Backends: []device.Backend{b}})
	get := func(user string) string {
		t.Helper()
		resp, err := h.HTTP(user).Get("http://hwauthd/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status as %s: %d %s, %v", user, resp.StatusCode, body, err)
		}
		return string(body)
	}
	alice, ctx := h.Client("alice"), context.Background()
	want := func(state string, devices *int) {
		t.Helper()
		st, err := alice.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := st.Backends["fido2"]
		if got.State != state || (devices == nil) != (got.Devices == nil) || devices != nil && *got.Devices != *devices {
			t.Fatalf("fido2 = %+v, want %s with devices %v", got, state, devices)
		}
	}
	want(ipc.BackendUp, nil)
	want(ipc.BackendUp, nil) // sent again
	b.set(device.Status{State: device.StateDown, Detail: "gone"})
	want(ipc.BackendDown, nil)
	one, two := 1, 2
	b.set(device.Status{State: device.StateUp, Devices: &one})
	want(ipc.BackendUp, &one)
	b.set(device.Status{State: device.StateUp, Devices: &two})
	want(ipc.BackendUp, &two)
	if a, r, n := get("alice"), get("root"), get("bob"); a != r || a != n {
		t.Errorf("callers get different statuses:\nalice %s\nroot  %s\nbob   %s", a, r, n)
	}
}
