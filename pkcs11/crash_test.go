package pkcs11

import (
	"context"
	"crypto/sha256"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
)

// helperPID returns the running helper's pid, or 0.
func (b *Backend) helperPID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return 0
	}
	return b.conn.pid()
}

func signOnce(d *Device) error {
	digest := sha256.Sum256([]byte("after the crash"))
	_, err := d.Sign(context.Background(), device.SignRequest{Key: "01", Algorithm: "ecdsa-sha256", Digest: digest[:], PIN: []byte(testPIN)})
	return err
}

// TestHelperKilled kills the helper as a crashing module would: requests
// fail with ErrUnavailable while it is down, the device stays listed, and
// after the restart the same device signs again.
func TestHelperKilled(t *testing.T) {
	gate := make(chan struct{})
	s := newSoftToken(t, Config{})
	s.b.beforeRestart = func() { <-gate }
	d := s.device(t, "hw")
	if err := signOnce(d); err != nil {
		t.Fatalf("before the crash: %v", err)
	}
	pid := s.b.helperPID()
	if err := syscall.Kill(pid, syscall.SIGSEGV); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s.b, "the backend down", func() bool { return s.b.Status().State == device.StateDown })
	if err := signOnce(d); !errors.Is(err, hwerr.ErrUnavailable) {
		t.Errorf("while the helper is down: err = %v, want ErrUnavailable", err)
	}
	if s.host.count() != 2 {
		t.Errorf("devices dropped while the helper restarts: %d", s.host.count())
	}
	close(gate)
	waitFor(t, s.b, "a new helper", func() bool {
		return s.b.Status().State == device.StateUp && s.b.helperPID() != pid
	})
	if err := signOnce(d); err != nil {
		t.Errorf("after the restart: %v", err)
	}
}

// TestHelperHangs stops the helper (SIGSTOP) as a hanging module would: the
// request fails with ErrUnavailable after the request timeout, the helper is
// killed and restarted, and signing works again.
func TestHelperHangs(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := newSoftToken(t, Config{RequestTimeout: timeout})
	d := s.device(t, "hw")
	pid := s.b.helperPID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := signOnce(d); !errors.Is(err, hwerr.ErrUnavailable) {
		t.Errorf("hung helper: err = %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took < timeout {
		t.Errorf("gave up after %v, before the %v timeout", took, timeout)
	}
	waitFor(t, s.b, "a new helper", func() bool {
		return s.b.Status().State == device.StateUp && s.b.helperPID() != pid
	})
	if err := signOnce(d); err != nil {
		t.Errorf("after the restart: %v", err)
	}
}
