package e2e

import (
	"context"
	"crypto/sha256"
	"net"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/fido/softkey"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
	"github.com/hwauthd/hwauthd/pcsc/vpcd"
)

// The benchmarks pair each path through hwauthd with the direct path on the
// same emulated hardware; scripts/bench.sh prints their ratios.

var benchDigest = func() []byte { d := sha256.Sum256([]byte("bench")); return d[:] }()

// BenchmarkPIVSignDaemon: PIN + ECDSA P-256 signature through hwauthd's
// socket (client, HTTP, access check, PC/SC transaction, logout).
func BenchmarkPIVSignDaemon(b *testing.B) {
	h := start(b)
	c := h.insert(0, pivcard.Options{})
	req := ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: benchDigest, PIN: ipc.Secret(pivcard.DefaultPIN)}
	for b.Loop() {
		if _, err := h.c.Sign(b.Context(), c.id, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPIVSignDirect: the same operations straight over PC/SC on the
// same kind of card: a transaction with VERIFY, GENERAL AUTHENTICATE and
// the logout.
func BenchmarkPIVSignDirect(b *testing.B) {
	p := testenv.PCSCD(b)
	pc, err := pivcard.New(pivcard.Options{})
	if err != nil {
		b.Fatal(err)
	}
	// Reader 1: the daemon benchmarks use reader 0, and pcscd may still be
	// noticing their card's removal.
	slot := vpcd.NewSlot(pc, func(ctx context.Context) (net.Conn, error) { return p.DialReader(ctx, 1) })
	if err := slot.Insert(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = slot.Remove() })
	card, cl := connectWhenPresent(b, p.ReaderName(1))
	defer card.Close()
	ctx := b.Context()
	for b.Loop() {
		err := card.Transaction(ctx, func() error {
			if err := cl.VerifyPIN(ctx, []byte(pivcard.DefaultPIN)); err != nil {
				return err
			}
			if _, err := cl.Sign(ctx, piv.SlotAuthentication, piv.ECDSASHA256, benchDigest); err != nil {
				return err
			}
			return cl.Logout(ctx)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// connectWhenPresent connects to the PIV card in reader once pcscd sees it,
// waiting on a Monitor's events; a card pcscd still lists from an earlier
// test, which fails to select, is passed over until the next insertion.
func connectWhenPresent(b *testing.B, reader string) (*pcsc.Card, *piv.Client) {
	ctx, cancel := context.WithTimeout(b.Context(), waitTimeout)
	defer cancel()
	events := make(chan pcsc.Event, 16)
	m := pcsc.NewMonitor(testLogger(b))
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, events) }()
	defer func() { cancel(); <-done }()
	for {
		select {
		case e := <-events:
			if e.Type != pcsc.CardInserted || e.Reader != reader {
				continue
			}
			card, err := pcsc.Connect(ctx, reader)
			if err != nil {
				continue
			}
			cl := piv.NewClient(card)
			if err := card.Transaction(ctx, func() error { _, err := cl.Select(ctx); return err }); err != nil {
				card.Close()
				continue
			}
			return card, cl
		case <-ctx.Done():
			b.Fatalf("card not seen in %s", reader)
		}
	}
}

// BenchmarkInsertionToEvent: from the card's insertion into the reader to
// the card-inserted event on a watcher of hwauthd (pcscd's detection, the
// daemon reading CHUID and certificates, the event stream).
func BenchmarkInsertionToEvent(b *testing.B) {
	h := start(b)
	c := h.insert(0, pivcard.Options{})
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		h.remove(c)
		b.StartTimer()
		t0 := time.Now()
		h.reinsert(c)
		total += time.Since(t0)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/insertion")
}

// BenchmarkVSCSignDaemon: PIN + ECDSA P-256 signature with a TPM virtual
// card through hwauthd; compare with tpm's BenchmarkSignDirect (TPM2_Sign
// through go-tpm, key loaded) on the same kind of swtpm.
func BenchmarkVSCSignDaemon(b *testing.B) {
	sw := testenv.SWTPM(b)
	h := start(b, withTPM(sw))
	h.waitBackendUp("tpm")
	v := h.createVSC("bench", false, nil)
	req := ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: benchDigest, PIN: ipc.Secret(vscPIN)}
	for b.Loop() {
		if _, err := h.c.Sign(b.Context(), v.ID, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAssertDaemon: a FIDO2 assertion (user presence, no PIN) through
// hwauthd; compare with fido's BenchmarkAssertGoLibfido2Direct on the same
// software key.
func BenchmarkAssertDaemon(b *testing.B) {
	dir := b.TempDir()
	h := start(b, withFIDO(dir))
	_, id := h.plug(dir, softkey.Options{})
	cred, err := h.c.MakeCredential(b.Context(), id, ipc.MakeCredentialRequest{RPID: "bench.example", UserID: []byte("u"), UserName: "u", ClientDataHash: benchDigest})
	if err != nil {
		b.Fatal(err)
	}
	req := ipc.GetAssertionRequest{RPID: "bench.example", ClientDataHash: benchDigest, CredentialIDs: [][]byte{cred.CredentialID}, UserPresence: true}
	for b.Loop() {
		if _, err := h.c.GetAssertion(b.Context(), id, req); err != nil {
			b.Fatal(err)
		}
	}
}
