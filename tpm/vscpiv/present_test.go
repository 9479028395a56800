package vscpiv_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/tpm/vscbackend"
	"github.com/hwauthd/hwauthd/tpm/vscpiv"
)

// TestPresentationOff: with no readers configured the cards stay API-only
// and the status says so.
func TestPresentationOff(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, _, _, run := runVirtualCard(t, func(b device.Backend) device.Backend {
		return vscpiv.Present(b, vscpiv.PresentConfig{Readers: 0, Socket: filepath.Join(t.TempDir(), "readers.sock")}, log)
	})
	if st := run.Status(); !strings.Contains(st.Detail, "API-only") {
		t.Errorf("status detail %q", st.Detail)
	}
}

// TestPresentationFull: with one reader, a second virtual card stays
// API-only and the status counts both.
func TestPresentationFull(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var inner *vscbackend.Backend
	_, _, h, run := runVirtualCard(t, func(b device.Backend) device.Backend {
		inner = b.(*vscbackend.Backend)
		return vscpiv.Present(b, vscpiv.PresentConfig{Readers: 1, Socket: filepath.Join(t.TempDir(), "readers.sock")}, log)
	})
	ctx := context.Background()
	second, err := inner.Create(ctx, device.CreateVirtualCard{Label: "Second", PIN: []byte(pin), PUK: []byte(puk)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := run.(device.Enumerator); !ok {
		t.Error("the Presenter hides the TPM backend's first enumeration from the daemon's readiness")
	} else {
		select {
		case <-run.(device.Enumerator).Enumerated():
		default:
			t.Error("Enumerated not closed although the backend presented its cards")
		}
	}
	if h.device(second.ID) == nil {
		t.Fatal("second card not attached")
	}
	if st := run.Status(); !strings.Contains(st.Detail, "1 virtual cards presented to PC/SC applications as PIV cards (at most 1); 1 API-only") {
		t.Errorf("status detail %q", st.Detail)
	}
}
