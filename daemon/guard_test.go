package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/ipc"
)

// stuckDevice blocks VerifyPIN until released and records the PIN it got.
type stuckDevice struct {
	device.Device
	entered chan struct{}
	release chan struct{}
	got     chan []byte
}

func (d *stuckDevice) Info() device.Info { return device.Info{ID: "piv-stuck"} }

func (d *stuckDevice) VerifyPIN(ctx context.Context, pin []byte) error {
	d.entered <- struct{}{}
	<-d.release
	d.got <- append([]byte(nil), pin...)
	return nil
}

// TestGuardKeepsTheDeadline: a device that does not answer costs its caller
// the deadline only; it is then busy at once and listed from its last
// description; the PIN it still works with is its own copy, intact after
// the caller wiped its own; when it answers, it is used again.
func TestGuardKeepsTheDeadline(t *testing.T) {
	inner := &stuckDevice{entered: make(chan struct{}, 1), release: make(chan struct{}), got: make(chan []byte, 2)}
	g := guard(inner, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)

	pin := []byte("123456")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.VerifyPIN(ctx, pin); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung verify: %v, want the deadline", err)
	}
	clear(pin) // the handler wipes its copy once it has answered
	<-inner.entered

	if err := g.VerifyPIN(context.Background(), []byte("654321")); MapError(err) == nil || MapError(err).Code != ipc.CodeBusy {
		t.Fatalf("verify on the wedged device: %v, want busy", err)
	}
	if id := g.Info().ID; id != "piv-stuck" {
		t.Fatalf("info of the wedged device: %q", id)
	}

	inner.release <- struct{}{}
	if got := <-inner.got; string(got) != "123456" {
		t.Fatalf("the hung operation's PIN was changed under it: %q", got)
	}
	// Recovered once the hung operation returned: the next one runs.
	done := make(chan error, 1)
	go func() { done <- g.VerifyPIN(context.Background(), []byte("111111")) }()
	for {
		select {
		case <-inner.entered:
			inner.release <- struct{}{}
			if err := <-done; err != nil {
				t.Fatalf("verify after recovery: %v", err)
			}
			if got := <-inner.got; string(got) != "111111" {
				t.Fatalf("PIN after recovery: %q", got)
			}
			return
		case err := <-done:
			// Still wedged for a moment: the hung operation's goroutine
			// had not finished yet.
			if MapError(err) == nil || MapError(err).Code != ipc.CodeBusy {
				t.Fatalf("verify after recovery: %v", err)
			}
			go func() { done <- g.VerifyPIN(context.Background(), []byte("111111")) }()
		}
	}
}
