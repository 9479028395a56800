package fido

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hwauthd/hwauthd/fido/fidotest/softkey"
	"github.com/hwauthd/hwauthd/fido/fidotest/vfido"
)

func nextEvent(t *testing.T, events <-chan Event) Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no hot-plug event")
	}
	return Event{}
}

// TestWatcherHotplug stands a temporary directory for /dev: creating and
// removing hidraw nodes there makes the watcher re-list keys through the
// interposed libfido2 manifest.
func TestWatcherHotplug(t *testing.T) {
	dev := t.TempDir()
	a := vfido.Start(t, softkey.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan Event, 8)
	done := make(chan error, 1)
	go func() { done <- NewWatcher(dev, New(Config{}).List).Run(ctx, events) }()
	if e := nextEvent(t, events); e.Kind != Attached || e.Device.Path != a.Path {
		t.Fatalf("initial event %v %+v", e.Kind, e.Device)
	}
	b := vfido.Start(t, softkey.Options{})
	node := filepath.Join(dev, "hidraw7")
	if err := os.WriteFile(node, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, events); e.Kind != Attached || e.Device.Path != b.Path {
		t.Fatalf("after plug: %v %+v", e.Kind, e.Device)
	}
	b.Unplug()
	os.Remove(node)
	if e := nextEvent(t, events); e.Kind != Detached || e.Device.Path != b.Path {
		t.Fatalf("after unplug: %v %+v", e.Kind, e.Device)
	}
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestHasHidraw(t *testing.T) {
	ev := func(mask uint32, name string) []byte {
		n := (len(name) + 1 + 15) / 16 * 16
		b := make([]byte, unix.SizeofInotifyEvent+n)
		binary.NativeEndian.PutUint32(b[4:], mask)
		binary.NativeEndian.PutUint32(b[12:], uint32(n))
		copy(b[unix.SizeofInotifyEvent:], name)
		return b
	}
	for _, tc := range []struct {
		b    []byte
		want bool
	}{
		{ev(unix.IN_CREATE, "hidraw0"), true},
		{ev(unix.IN_CREATE, "ttyS0"), false},
		{append(ev(unix.IN_CREATE, "null"), ev(unix.IN_DELETE, "hidraw12")...), true},
		{ev(unix.IN_Q_OVERFLOW, ""), true},
		{ev(unix.IN_CREATE, "hidraw0")[:20], false},
	} {
		if got := hasHidraw(tc.b); got != tc.want {
			t.Errorf("hasHidraw(%q) = %v", tc.b, got)
		}
	}
}

func FuzzInotifyEvents(f *testing.F) {
	b := make([]byte, unix.SizeofInotifyEvent+16)
	binary.NativeEndian.PutUint32(b[12:], 16)
	copy(b[unix.SizeofInotifyEvent:], "hidraw0")
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		hasHidraw(b) // must not panic on any buffer
	})
}
