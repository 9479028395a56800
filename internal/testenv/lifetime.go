package testenv

import (
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"
)

var (
	atExitMu sync.Mutex
	atExit   []func()
)

// AtExit registers f to run once when the test binary's tests have finished
// (from Main), after functions registered later. Starters of process-wide
// stacks use it to stop them.
func AtExit(f func()) {
	atExitMu.Lock()
	defer atExitMu.Unlock()
	atExit = append(atExit, f)
}

// Main runs the tests of a test binary, then stops everything registered with
// AtExit (a private pcscd or PostgreSQL among them) and exits with the tests'
// status. Use it as: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	runAtExit()
	os.Exit(code)
}

func runAtExit() {
	atExitMu.Lock()
	fs := atExit
	atExit = nil
	atExitMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// StartLocked starts cmd from a goroutine locked to its OS thread and keeps
// that goroutine (and so the thread that Pdeathsig watches) in cmd.Wait until
// the process exits; the returned channel is closed then. Go ends a thread
// whose locked goroutine returns, and Pdeathsig fires when the forking
// thread ends, so a stack started with Pdeathsig must be started this way.
func StartLocked(cmd *exec.Cmd) (<-chan struct{}, error) {
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			errc <- err
			return
		}
		errc <- nil
		_ = cmd.Wait() // killed on purpose; the log file has the rest
		close(done)
	}()
	return done, <-errc
}
