package e2e

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// deadlineTimeout is the request_timeout of the deadline tests (shorter
// than the default, so the test is quick; the daemon must keep any value).
const deadlineTimeout = 2 * time.Second

// withRequestTimeout sets api.request_timeout.
func withRequestTimeout(d time.Duration) func(*config.Config) {
	return func(c *config.Config) { c.API.RequestTimeout = config.Duration{Duration: d} }
}

// hangingCard never answers GENERAL AUTHENTICATE until released, like a
// card that stopped answering in the middle of a signature.
type hangingCard struct {
	*pivcard.Card
	release chan struct{}
	once    sync.Once
}

func (c *hangingCard) Transmit(apdu []byte) []byte {
	if len(apdu) > 1 && apdu[1] == piv.InsGeneralAuthenticate {
		<-c.release
	}
	return c.Card.Transmit(apdu)
}

func (c *hangingCard) thaw() { c.once.Do(func() { close(c.release) }) }

// timed runs op and returns how long it took and its error.
func timed(op func() error) (time.Duration, error) {
	start := time.Now()
	err := op()
	return time.Since(start), err
}

// checkDeadline fails unless err is timeout and came at the deadline.
func checkDeadline(t *testing.T, what string, err error, took time.Duration) {
	t.Helper()
	if apiCode(err) != ipc.CodeTimeout {
		t.Fatalf("%s: %v, want timeout", what, err)
	}
	if took < deadlineTimeout || took > deadlineTimeout+time.Second {
		t.Fatalf("%s answered after %s, want request_timeout (%s)", what, took, deadlineTimeout)
	}
}

// waitAnswering signs until the device answers again after it was wedged;
// it is recovered in the background, so this asks until waitTimeout.
func waitAnswering(t *testing.T, what string, sign func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := sign()
		if err == nil {
			return
		}
		if apiCode(err) != ipc.CodeBusy || time.Now().After(deadline) {
			t.Fatalf("%s after it answers again: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHungCardKeepsTheDeadline: a card that stops answering in the middle
// of a signature (issue #13, defect 5) costs that request request_timeout
// and answers timeout; meanwhile the card is wedged (busy at once), and
// another card, the list, status and a sign-in with the other card are
// served. Once the card answers again it is used as before.
func TestHungCardKeepsTheDeadline(t *testing.T) {
	h := start(t, withRequestTimeout(deadlineTimeout))
	pc, err := pivcard.New(pivcard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hc := &hangingCard{Card: pc, release: make(chan struct{})}
	t.Cleanup(hc.thaw)
	hung := h.insertCard(0, pc, hc)
	good := h.insert(1, pivcard.Options{})
	h.register(good, "root")

	took, err := timed(func() error { return signAndVerify(t, h, hung, piv.SlotAuthentication, "ecdsa-sha256") })
	checkDeadline(t, "sign on the hung card", err, took)

	// The hung card is wedged: busy at once, not another wait.
	took, err = timed(func() error { return signAndVerify(t, h, hung, piv.SlotAuthentication, "ecdsa-sha256") })
	if apiCode(err) != ipc.CodeBusy || took > deadlineTimeout/2 {
		t.Fatalf("second sign on the wedged card: %v after %s, want busy at once", err, took)
	}
	// Everything else is served at once.
	ctx, cancel := context.WithTimeout(context.Background(), deadlineTimeout/2)
	defer cancel()
	if _, err := h.c.Status(ctx); err != nil {
		t.Fatalf("status while a card hangs: %v", err)
	}
	list, err := h.c.Authenticators(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("authenticators while a card hangs: %v %v", list, err)
	}
	if err := signAndVerify(t, h, good, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
		t.Fatalf("sign on the other card: %v", err)
	}
	if _, err := h.signIn("root", pivcard.DefaultPIN); err != nil {
		t.Fatalf("sign-in with the other card: %v", err)
	}

	hc.thaw()
	waitAnswering(t, "the thawed card", func() error { return signAndVerify(t, h, hung, piv.SlotAuthentication, "ecdsa-sha256") })
}

// TestFrozenTPMKeepsTheDeadline: a TPM that stops answering (swtpm under
// SIGSTOP) costs a virtual card's signature request_timeout and answers
// timeout, while a smart card and status are served; in the background the
// hung command's connection is closed and the backend reconnects, so after
// SIGCONT the virtual card signs again.
func TestFrozenTPMKeepsTheDeadline(t *testing.T) {
	sw := testenv.SWTPM(t)
	h := start(t, withTPM(sw), withRequestTimeout(deadlineTimeout))
	h.waitBackendUp("tpm")
	v := h.createVSC("frozen", false, nil)
	card := h.insert(0, pivcard.Options{})
	if err := signVSC(t, h, v.ID, v.PublicKey, vscPIN); err != nil {
		t.Fatalf("sign before the freeze: %v", err)
	}

	sw.Signal(t, syscall.SIGSTOP)
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			sw.Signal(t, syscall.SIGCONT)
		}
	}
	t.Cleanup(thaw)
	took, err := timed(func() error { return signVSC(t, h, v.ID, v.PublicKey, vscPIN) })
	checkDeadline(t, "sign on the frozen TPM", err, took)

	ctx, cancel := context.WithTimeout(context.Background(), deadlineTimeout/2)
	defer cancel()
	if _, err := h.c.Status(ctx); err != nil {
		t.Fatalf("status while the TPM is frozen: %v", err)
	}
	if _, err := h.c.Authenticators(ctx); err != nil {
		t.Fatalf("authenticators while the TPM is frozen: %v", err)
	}
	if err := signAndVerify(t, h, card, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
		t.Fatalf("smart card while the TPM is frozen: %v", err)
	}
	// Recovered in the background while still frozen: the connection under
	// the hung command is closed and the backend says it is reconnecting.
	deadline := time.Now().Add(waitTimeout)
	for {
		st, err := h.c.Status(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if st.Backends["tpm"].State != ipc.BackendUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the frozen TPM's backend still says up: %+v", st.Backends["tpm"])
		}
		time.Sleep(20 * time.Millisecond)
	}

	thaw()
	waitAnswering(t, "the thawed TPM", func() error { return signVSC(t, h, v.ID, v.PublicKey, vscPIN) })
}
