package pkcs11

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/internal/testenv"
)

// helperBin is the helper binary built once for this test binary.
var (
	helperOnce sync.Once
	helperBin  string
	helperErr  error
	helperDir  string
)

func TestMain(m *testing.M) {
	testenv.AtExit(func() {
		if helperDir != "" {
			os.RemoveAll(helperDir)
		}
	})
	testenv.Main(m)
}

// buildHelper builds cmd/hwauthd-pkcs11 once per test binary.
func buildHelper(t testing.TB) string {
	t.Helper()
	helperOnce.Do(func() {
		helperDir, helperErr = os.MkdirTemp("", "hwauthd-pkcs11-test-")
		if helperErr != nil {
			return
		}
		helperBin = filepath.Join(helperDir, HelperName)
		out, err := exec.Command("go", "build", "-o", helperBin, "github.com/hwauthd/hwauthd/cmd/hwauthd-pkcs11").CombinedOutput()
		if err != nil {
			helperErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if helperErr != nil {
		t.Fatalf("build helper: %v", helperErr)
	}
	return helperBin
}

// fakeHost records what a backend reports. It is the daemon's side of the
// contract, which this package cannot import.
type fakeHost struct {
	mu      sync.Mutex
	devices map[string]device.Device
	attachs int
}

func newFakeHost() *fakeHost { return &fakeHost{devices: map[string]device.Device{}} }

func (h *fakeHost) Attach(d device.Device) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.devices[d.Info().ID] = d
	h.attachs++
}

func (h *fakeHost) Detach(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.devices, id)
}

func (h *fakeHost) SetReader(device.Reader) {}
func (h *fakeHost) RemoveReader(string)     {}
func (h *fakeHost) Notify(device.Event)     {}
func (h *fakeHost) count() int              { h.mu.Lock(); defer h.mu.Unlock(); return len(h.devices) }
func (h *fakeHost) byLabel(label string) *Device {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.devices {
		if d.Info().Label == label {
			return d.(*Device)
		}
	}
	return nil
}

// waitFor waits until cond holds, re-checking whenever the backend's state
// or devices change, for at most 15 seconds.
func waitFor(t testing.TB, b *Backend, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		changed := b.changed
		b.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s (status %+v)", what, b.Status())
		}
	}
}

// runBackend starts b against host and stops it when the test ends.
func runBackend(t testing.TB, b *Backend, host device.Host) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, host) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// softToken is a SoftHSM2 store with one token "hw" holding a P-256 key
// (CKA_ID 01), a P-384 key (02) and an RSA-2048 key (03), and a second token
// "other" with one P-256 key (01).
type softToken struct {
	hsm  *testenv.SoftHSMInstance
	b    *Backend
	host *fakeHost
}

const (
	testPIN   = "123456"
	testSOPIN = "87654321"
)

func newSoftToken(t testing.TB, cfg Config) *softToken {
	t.Helper()
	hsm := testenv.SoftHSM(t)
	hsm.InitToken("hw", testPIN, testSOPIN)
	hsm.GenerateKey("hw", testPIN, "EC:prime256v1", "01", "p256")
	hsm.GenerateKey("hw", testPIN, "EC:secp384r1", "02", "p384")
	hsm.GenerateKey("hw", testPIN, "rsa:2048", "03", "rsa")
	hsm.InitToken("other", testPIN, testSOPIN)
	hsm.GenerateKey("other", testPIN, "EC:prime256v1", "01", "p256")
	cfg.Modules = []string{hsm.Module()}
	cfg.HelperPath = buildHelper(t)
	cfg.Env = hsm.Env()
	s := &softToken{hsm: hsm, b: NewBackend(cfg, nil), host: newFakeHost()}
	runBackend(t, s.b, s.host)
	waitFor(t, s.b, "two tokens", func() bool { return s.host.count() == 2 })
	return s
}

func (s *softToken) device(t testing.TB, label string) *Device {
	t.Helper()
	d := s.host.byLabel(label)
	if d == nil {
		t.Fatalf("no token labelled %q", label)
	}
	return d
}
