package testenv

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// swtpmStartTimeout bounds how long SWTPM waits for a started swtpm to accept
// connections on its command port.
const swtpmStartTimeout = 10 * time.Second

// SWTPMInstance is a private swtpm (libtpms) TPM 2.0 simulator started by
// SWTPM for one test. It listens on a loopback TCP port pair: the command
// port Addr and the platform (control) port Addr+1, which is what go-tpm's
// tcp transport expects.
//
// Each instance has its own state directory and therefore its own
// endorsement seed: two instances are two different devices. Restart keeps
// the state, so the device stays the same.
type SWTPMInstance struct {
	port     int
	stateDir string
	caDir    string // the local EK CA (SWTPMWithEKCert), or empty

	mu   sync.Mutex
	cmd  *exec.Cmd
	done <-chan struct{}
}

// SWTPM starts a private swtpm on a free loopback port pair with a fresh
// state directory under t.TempDir, waits until its command port accepts
// connections, and stops it when the test ends. It stops the test through
// Missing when swtpm is not installed. Call it twice for two different
// devices.
func SWTPM(t testing.TB) *SWTPMInstance {
	t.Helper()
	RequireBinaries(t, "swtpm")
	dir := filepath.Join(t.TempDir(), "tpm")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("swtpm state dir: %v", err)
	}
	s := &SWTPMInstance{port: FreeTCPPortPair(t), stateDir: dir}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

// Addr returns the command address "127.0.0.1:P"; the platform port is P+1.
func (s *SWTPMInstance) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// PlatformAddr returns the platform (control) address "127.0.0.1:P+1".
func (s *SWTPMInstance) PlatformAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port+1))
}

// StateDir returns the directory holding the simulated TPM's persistent
// state (seeds, NV, persistent objects).
func (s *SWTPMInstance) StateDir() string { return s.stateDir }

// Restart stops swtpm and starts it again on the same state and ports, as a
// reboot of the same device: persistent objects and NV survive, transient
// objects and sessions do not. Clients must reconnect.
func (s *SWTPMInstance) Restart(t testing.TB) {
	t.Helper()
	s.stop()
	s.start(t)
}

// Signal sends sig to the running swtpm: SIGSTOP freezes the device (it
// stops answering without closing its connections), SIGCONT thaws it.
func (s *SWTPMInstance) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		t.Fatal("swtpm is not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal swtpm: %v", err)
	}
}

// Kill ends swtpm at once (SIGKILL), as a TPM that goes away; its state
// stays on disk. Start brings it back.
func (s *SWTPMInstance) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		t.Fatal("swtpm is not running")
	}
	_ = cmd.Process.Kill()
	<-done
}

// Start starts swtpm again after Kill, on the same state and ports.
func (s *SWTPMInstance) Start(t testing.TB) {
	t.Helper()
	s.start(t)
}

func (s *SWTPMInstance) start(t testing.TB) {
	t.Helper()
	p := strconv.Itoa(s.port)
	ctrl := strconv.Itoa(s.port + 1)
	cmd := exec.Command("swtpm", "socket", "--tpm2",
		"--tpmstate", "dir="+s.stateDir,
		"--server", "type=tcp,port="+p+",bindaddr=127.0.0.1",
		"--ctrl", "type=tcp,port="+ctrl+",bindaddr=127.0.0.1",
		"--flags", "not-need-init,startup-clear",
		"--log", "file="+filepath.Join(filepath.Dir(s.stateDir), "swtpm.log"))
	// swtpm dies with the test binary, even when that is killed. Pdeathsig
	// fires when the forking thread ends, and Go ends a thread whose locked
	// goroutine returns (pcscenv.DialReader's does): StartLocked forks from a
	// thread kept alive until swtpm exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done, err := StartLocked(cmd)
	if err != nil {
		t.Fatalf("start swtpm: %v", err)
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	if err := waitListening(s.Addr(), done); err != nil {
		s.stop()
		t.Fatalf("swtpm on %s: %v", s.Addr(), err)
	}
}

// waitListening dials addr until it accepts a connection, the process ends
// (done closed) or swtpmStartTimeout passes.
func waitListening(addr string, done <-chan struct{}) error {
	deadline := time.Now().Add(swtpmStartTimeout)
	backoff := time.Millisecond
	for {
		c, err := net.DialTimeout("tcp", addr, time.Until(deadline))
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return errors.New("did not start listening in time")
		}
		select {
		case <-done:
			return errors.New("swtpm exited during start-up")
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

// stop terminates swtpm and waits for it to exit.
func (s *SWTPMInstance) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
