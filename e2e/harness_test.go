package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/hwauthd/hwauthd/cmd/hwauthd/builtins"
	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/internal/testenv/pcscenv"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/client"
	"github.com/hwauthd/hwauthd/ipc/server"
	"github.com/hwauthd/hwauthd/pcsc/pcsctest/vicc"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
	"github.com/hwauthd/hwauthd/pcsc/vpcd"
	"github.com/hwauthd/hwauthd/store/boltstore"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runHelper())
	}
	if os.Getenv(floodEnv) != "" {
		os.Exit(runFlooder())
	}
	if os.Getenv(echoEnv) != "" {
		os.Exit(runEcho())
	}
	testenv.Main(m)
}

// waitTimeout bounds every wait for an event; events normally arrive in
// milliseconds.
const waitTimeout = 15 * time.Second

// harness is one hwauthd serving on a private socket over the shared
// private pcscd.
type harness struct {
	t      testing.TB
	pcsc   *pcscenv.PCSC
	dir    string
	socket string
	cfg    config.Config
	store  *boltstore.Store
	c      *client.Client
	events chan ipc.Event
	stop   func()
	// proc is the daemon's process (spawn), else nil; stopProc ends it.
	proc     *os.Process
	stopProc func() error
}

// start runs a daemon with the PC/SC backend in this process; mutate
// adjusts the configuration first.
func start(t testing.TB, mutate ...func(*config.Config)) *harness {
	t.Helper()
	h := newHarness(t, mutate...)
	h.run()
	h.waitReaders(2)
	return h
}

// startProcess is start with hwauthd as its own process (the built binary
// with a configuration file), as it runs for real.
func startProcess(t testing.TB, mutate ...func(*config.Config)) *harness {
	t.Helper()
	h := newHarness(t, mutate...)
	h.runProcess()
	h.waitReaders(2)
	return h
}

// newHarness prepares the configuration and directories of a daemon over the
// shared private pcscd.
func newHarness(t testing.TB, mutate ...func(*config.Config)) *harness {
	t.Helper()
	testenv.RequireRoot(t)
	h := &harness{t: t, pcsc: pcscenv.PCSCD(t), dir: t.TempDir()}
	// Other uids must reach the socket: its directory and t.TempDir's
	// parent are made world-traversable.
	for _, d := range []string{filepath.Dir(h.dir), h.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.socket = filepath.Join(h.dir, "hwauthd.sock")
	h.cfg = config.Defaults()
	h.cfg.Daemon.Socket = h.socket
	h.cfg.Daemon.StateDir = filepath.Join(h.dir, "state")
	// PKCS#11 is off unless a test turns it on (withPKCS11): OpenSC probing
	// every card would only slow the other tests down.
	h.cfg.PKCS11.Enabled = false
	// Likewise the TPM, unless a test gives it a swtpm (withTPM).
	h.cfg.TPM.Enabled = false
	// Each daemon serves its own virtual readers' socket (no test pcscd
	// loads the driver for it; pcsc/vreader and tpm/vscpiv test that).
	h.cfg.TPM.ReaderSocket = filepath.Join(h.dir, "readers.sock")
	for _, m := range mutate {
		m(&h.cfg)
	}
	mark := h.pcsc.LogMark()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.pcsc.Diagnostics(mark))
		}
	})
	return h
}

// run opens the store and starts the daemon with the configured backends.
func (h *harness) run() {
	t := h.t
	if err := os.MkdirAll(h.cfg.Daemon.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(h.cfg.Daemon.StateDir, "hwauthd.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.store = st
	log := testLogger(t)
	set := builtins.Build(h.cfg, log, st, st)
	d, err := daemon.New(daemon.Options{Config: h.cfg, Logger: log, Backends: set.Backends, VirtualCards: set.VirtualCards, Store: st, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := server.Listen(h.socket, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, ln) }()
	h.attach(func() error {
		cancel()
		err := <-done
		st.Close()
		return err
	})
}

// runProcess starts the hwauthd binary (spawn) and attaches to it.
func (h *harness) runProcess() {
	h.spawn()
	h.attach(h.stopProc)
}

// spawn writes the configuration to a file and starts the hwauthd binary
// with it, stopped (SIGTERM) when the test ends and its log printed if the
// test fails. It sets h.c and h.proc and returns the time of the start.
func (h *harness) spawn() time.Time {
	t := h.t
	conf := filepath.Join(h.dir, "hwauthd.toml")
	var text bytes.Buffer
	if err := toml.NewEncoder(&text).Encode(h.cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, text.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(buildCmd(t, "hwauthd"), "--config", conf)
	cmd.Env = h.pcsc.Env()
	log := new(testenv.Buffer)
	cmd.Stderr = log
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hwauthd log:\n%s", log.String())
		}
	})
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.proc = cmd.Process
	h.stopProc = sync.OnceValue(func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		return cmd.Wait()
	})
	t.Cleanup(func() { _ = h.stopProc() })
	h.c = client.New(h.socket)
	return started
}

// attach connects the client and the event stream to the daemon (waiting
// for a daemon in another process to open its socket) and sets h.stop to
// close the stream after stop ends the daemon.
func (h *harness) attach(stop func() error) {
	t := h.t
	h.c = client.New(h.socket)
	h.events = make(chan ipc.Event, 1024)
	// The stream has its own context, so it receives what the daemon sends
	// while it stops (every session's session-ended) until the daemon
	// closes it.
	streamCtx, closeStream := context.WithCancel(context.Background())
	stream, err := h.c.Events(streamCtx, 0)
	for deadline := time.Now().Add(waitTimeout); err != nil && h.proc != nil && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // waiting for the daemon's process to open its socket
		stream, err = h.c.Events(streamCtx, 0)
	}
	if err != nil {
		closeStream()
		_ = stop()
		t.Fatal(err)
	}
	go func() {
		for {
			e, err := stream.Next()
			if err != nil {
				close(h.events)
				return
			}
			h.events <- e
		}
	}()
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		if err := stop(); err != nil {
			t.Errorf("daemon: %v", err)
		}
		closeStream()
	}
	t.Cleanup(h.stop)
}

// waitFor returns the first event that match accepts, failing the test after
// waitTimeout.
func (h *harness) waitFor(what string, match func(ipc.Event) bool) ipc.Event {
	h.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case e, ok := <-h.events:
			if !ok {
				h.t.Fatalf("event stream ended while waiting for %s", what)
			}
			if match(e) {
				return e
			}
		case <-deadline:
			h.t.Fatalf("no %s within %s", what, waitTimeout)
		}
	}
}

// waitPresent returns the id of an authenticator that match accepts: one
// already listed, or else the first announced by card-inserted within
// waitTimeout. Events queue from the daemon's start, so one that comes while
// the list is read is not missed.
func (h *harness) waitPresent(what string, match func(id string) bool) string {
	h.t.Helper()
	list, err := h.c.Authenticators(ctxT(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	for _, a := range list {
		if match(a.ID) {
			return a.ID
		}
	}
	return h.waitFor(what, func(e ipc.Event) bool {
		return e.Type == ipc.EventCardInserted && match(e.Authenticator)
	}).Authenticator
}

// waitBackendUp waits until /v1/status shows the backend up. Backends come
// up behind the socket and announce no event, so this asks again every few
// milliseconds until the deadline.
func (h *harness) waitBackendUp(name string) {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		st, err := h.c.Status(ctxT(h.t))
		if err == nil && st.Backends[name].State == ipc.BackendUp {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("backend %s not up within %s: %+v %v", name, waitTimeout, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitReaders waits until the daemon has seen n readers.
func (h *harness) waitReaders(n int) {
	h.t.Helper()
	seen := map[string]bool{}
	h.waitFor("readers", func(e ipc.Event) bool {
		if e.Type == ipc.EventReaderAdded {
			seen[e.Reader] = true
		}
		return len(seen) >= n
	})
}

// card is an emulated PIV card in one of the vpcd readers.
type card struct {
	*pivcard.Card
	slot   *vicc.Slot
	reader int
	id     string // the daemon's authenticator id
}

// insert creates a card and inserts it into reader i, waiting until the
// daemon announces it.
func (h *harness) insert(i int, opts pivcard.Options) *card {
	h.t.Helper()
	pc, err := pivcard.New(opts)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.insertCard(i, pc, pc)
}

// insertCard inserts an existing card (through vc, which may wrap it).
func (h *harness) insertCard(i int, pc *pivcard.Card, vc vpcd.Card) *card {
	h.t.Helper()
	c := h.newCard(i, pc, vc)
	h.reinsert(c)
	return c
}

// insertCardNoWait inserts a card without waiting for a daemon to see it
// (for daemons that run in another process).
func (h *harness) insertCardNoWait(i int, pc *pivcard.Card) *card {
	h.t.Helper()
	c := h.newCard(i, pc, pc)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.slot.Insert(ctx); err != nil {
		h.t.Fatalf("insert card into reader %d: %v", i, err)
	}
	return c
}

// newCard wraps a card for reader i; it is removed when the test ends.
func (h *harness) newCard(i int, pc *pivcard.Card, vc vpcd.Card) *card {
	guid := pc.GUID()
	c := &card{Card: pc, reader: i, id: "piv-" + hex.EncodeToString(guid[:])}
	c.slot = vicc.NewSlot(vc, func(ctx context.Context) (net.Conn, error) { return h.pcsc.DialReader(ctx, i) })
	h.t.Cleanup(func() { _ = c.slot.Remove() })
	return c
}

// reinsert puts a removed card back.
func (h *harness) reinsert(c *card) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.slot.Insert(ctx); err != nil {
		h.t.Fatalf("insert card into reader %d: %v", c.reader, err)
	}
	h.waitFor("card-inserted "+c.id, func(e ipc.Event) bool {
		return e.Type == ipc.EventCardInserted && e.Authenticator == c.id
	})
}

// remove pulls the card and waits until the daemon announces it.
func (h *harness) remove(c *card) {
	h.t.Helper()
	if err := c.slot.Remove(); err != nil {
		h.t.Fatalf("remove card: %v", err)
	}
	h.waitFor("card-removed "+c.id, func(e ipc.Event) bool {
		return e.Type == ipc.EventCardRemoved && e.Authenticator == c.id
	})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// apiCode returns the API error code of err, or "" when err is not one.
func apiCode(err error) ipc.Code {
	var e *ipc.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// testLogger logs at debug level: to the test's output as it goes with -v,
// and otherwise into a buffer that is printed only if the test fails, so a
// failure in CI comes with the daemon's side of the story.
func testLogger(t testing.TB) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, opts))
	}
	buf := new(testenv.Buffer)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, opts))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// clientFor returns a fresh client, on a new connection, to h's daemon.
func clientFor(h *harness) *client.Client { return client.New(h.socket) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
