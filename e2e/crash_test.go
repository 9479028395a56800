package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/internal/testenv/pcscenv"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/client"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
	"github.com/hwauthd/hwauthd/store/boltstore"
)

// crashUsers are accounts every Debian system has; the burst registers the
// cards to them.
var crashUsers = []string{"daemon", "bin", "sys", "games", "man", "lp", "mail", "news"}

// TestDaemonKilledDuringRegistrations: hwauthd (the real binary) is killed
// with SIGKILL in the middle of a burst of registrations and removals; the
// store it leaves opens cleanly (bbolt's consistency check and the store's
// own index check) and the restarted daemon serves every user a consistent
// list: at most five registrations, exactly one default when any.
func TestDaemonKilledDuringRegistrations(t *testing.T) {
	testenv.RequireRoot(t)
	p := pcscenv.PCSCD(t)
	bin := buildCmd(t, "hwauthd")
	dir := t.TempDir()
	conf := filepath.Join(dir, "hwauthd.toml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `
[daemon]
socket = %q
state_dir = %q
[policy]
allow_shared = true
[tpm]
enabled = false
[fido]
enabled = false
[pkcs11]
enabled = false
`, filepath.Join(dir, "hwauthd.sock"), filepath.Join(dir, "state")), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() (*exec.Cmd, *client.Client) {
		cmd := exec.Command(bin, "--config", conf)
		cmd.Env = append(os.Environ(), p.Env()...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, client.New(filepath.Join(dir, "hwauthd.sock"))
	}

	daemon, c := run()
	events := subscribe(t, c)
	var cards []string
	for i := range 2 {
		k := insertInto(t, p, i)
		waitEvent(t, events, func(e ipc.Event) bool { return e.Type == ipc.EventCardInserted && e.Authenticator == k })
		cards = append(cards, k)
	}

	// The burst: every worker registers and removes in a loop until the kill.
	// The kill waits for a registration that no worker removes to be
	// acknowledged, so the restarted daemon has something to keep.
	stop, kept := make(chan struct{}), make(chan struct{})
	var keptOnce sync.Once
	var lastErr atomic.Value
	var wg sync.WaitGroup
	for w, user := range crashUsers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				reg, err := c.Register(context.Background(), user, ipc.RegisterRequest{Authenticator: cards[w%2], PIN: ipc.Secret(pivcard.DefaultPIN)})
				switch {
				case err == nil && w%3 == 0:
					_, _ = c.RemoveRegistration(context.Background(), user, reg.ID)
				case err == nil:
					keptOnce.Do(func() { close(kept) })
				}
				if err != nil {
					lastErr.Store(err.Error()) // always a string: atomic.Value keeps one type
				}
				if err != nil && apiCode(err) == "" {
					return // the daemon is gone
				}
			}
		})
	}
	select {
	case <-kept:
	case <-time.After(waitTimeout):
		t.Fatalf("no registration was acknowledged in %s; the last error: %v", waitTimeout, lastErr.Load())
	}
	time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond) // the random moment of the crash, not a synchronization
	if err := daemon.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = daemon.Wait()
	close(stop)
	wg.Wait()

	// The file opens and passes bbolt's and the store's consistency checks.
	st, err := boltstore.Open(filepath.Join(dir, "state", "hwauthd.db"), boltstore.Options{})
	if err != nil {
		t.Fatalf("store after SIGKILL: %v", err)
	}
	st.Close()

	_, c = run()
	waitEvent(t, subscribe(t, c), func(e ipc.Event) bool { return e.Type == ipc.EventSnapshotDone })
	total := 0
	for _, user := range crashUsers {
		regs, err := c.Registrations(ctxT(t), user)
		if err != nil {
			t.Fatalf("%s after restart: %v", user, err)
		}
		defaults := 0
		for _, r := range regs.Registrations {
			if r.Default {
				defaults++
			}
		}
		if len(regs.Registrations) > 5 || (len(regs.Registrations) > 0 && (defaults != 1 || regs.Default == "")) {
			t.Errorf("%s: %d registrations, %d defaults (%q)", user, len(regs.Registrations), defaults, regs.Default)
		}
		total += len(regs.Registrations)
	}
	if total == 0 {
		t.Error("the burst registered nothing before the kill; the test proved nothing")
	}
}

// subscribe opens an event stream that lives until the test ends.
func subscribe(t *testing.T, c *client.Client) <-chan ipc.Event {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var stream *client.EventStream
	deadline := time.Now().Add(waitTimeout)
	for {
		var err error
		if stream, err = c.Events(ctx, 0); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not reachable: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // waiting for the daemon's socket to appear
	}
	ch := make(chan ipc.Event, 256)
	go func() {
		defer close(ch)
		for {
			e, err := stream.Next()
			if err != nil {
				return
			}
			ch <- e
		}
	}()
	return ch
}

func waitEvent(t *testing.T, ch <-chan ipc.Event, match func(ipc.Event) bool) ipc.Event {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatal("event stream ended")
			}
			if match(e) {
				return e
			}
		case <-deadline:
			t.Fatal("event did not come")
		}
	}
}

// insertInto inserts a new emulated card into reader i and returns its
// authenticator id.
func insertInto(t *testing.T, p *pcscenv.PCSC, i int) string {
	pc, err := pivcard.New(pivcard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, pcsc: p}
	return h.insertCardNoWait(i, pc).id
}
