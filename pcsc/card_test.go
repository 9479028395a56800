package pcsc

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/testenv/pcscenv"
	"github.com/hwauthd/hwauthd/pcsc/apdu"
)

// connectCard inserts a test card in reader i and connects to it; both go
// away when the test ends.
func connectCard(t testing.TB, p *pcscenv.PCSC, i int, respond func([]byte) []byte) (*testCard, *Card) {
	t.Helper()
	tc := insertCard(t, p, i, testATR, respond)
	waitCard(t, p.ReaderName(i), true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Connect(ctx, p.ReaderName(i))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return tc, c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCardTransmitRoundTrip(t *testing.T) {
	p := pcscenv.PCSCD(t)
	_, c := connectCard(t, p, 0, nil)
	if c.Reader() != p.ReaderName(0) || !bytes.Equal(c.ATR(), testATR) {
		t.Fatalf("Reader/ATR = %q % X", c.Reader(), c.ATR())
	}
	cmd := []byte{0x00, 0xCB, 0x3F, 0xFF, 0x03, 0x5C, 0x01, 0x7E}
	resp, err := c.Transmit(testCtx(t), cmd)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x5C, 0x01, 0x7E, 0x90, 0x00}; !bytes.Equal(resp, want) {
		t.Fatalf("response % X, want % X", resp, want)
	}
}

func TestCardConnectEmptyReader(t *testing.T) {
	p := pcscenv.PCSCD(t)
	_, err := Connect(testCtx(t), p.ReaderName(1))
	if !errors.Is(err, hwerr.ErrRemoved) {
		t.Fatalf("Connect to an empty reader = %v, want ErrRemoved", err)
	}
	_, err = Connect(testCtx(t), "No Such Reader 00 00")
	if !errors.Is(err, hwerr.ErrRemoved) {
		t.Fatalf("Connect to an unknown reader = %v, want ErrRemoved", err)
	}
}

// A card pulled while it is working on a command ends Transmit with
// ErrRemoved; the call does not hang.
func TestCardRemovedDuringTransmit(t *testing.T) {
	tc, c, got, release, errc := blockedTransmit(t)
	select {
	case <-got:
	case <-time.After(eventTimeout):
		t.Fatal("the card never received the command")
	}
	// Remove returns after the blocked respond does: pull in the background.
	removed := make(chan struct{})
	go func() { tc.remove(); close(removed) }()
	select {
	case err := <-errc:
		if !errors.Is(err, hwerr.ErrRemoved) {
			t.Fatalf("Transmit = %v, want ErrRemoved", err)
		}
	case <-time.After(eventTimeout):
		t.Fatal("Transmit still blocked after the card was pulled")
	}
	close(release)
	<-removed
	// Later calls fail the same way.
	if _, err := c.Transmit(testCtx(t), []byte{0x00, 0xA4, 0x04, 0x00}); !errors.Is(err, hwerr.ErrRemoved) {
		t.Fatalf("Transmit after removal = %v, want ErrRemoved", err)
	}
}

// Two connections to one card: while the first holds a transaction, the
// second cannot begin one (ErrBusy when its ctx ends) and gets it as soon as
// the first ends.
func TestCardTransactionsSerialize(t *testing.T) {
	p := pcscenv.PCSCD(t)
	_, c1 := connectCard(t, p, 0, nil)
	c2, err := Connect(testCtx(t), p.ReaderName(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()

	inside, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- c1.Transaction(testCtx(t), func() error {
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside

	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	entered := false
	err = c2.Transaction(short, func() error { entered = true; return nil })
	if !errors.Is(err, hwerr.ErrBusy) || entered {
		t.Fatalf("second transaction while the first is open: err=%v entered=%v, want ErrBusy", err, entered)
	}

	secondIn := make(chan struct{})
	second := make(chan error, 1)
	go func() {
		second <- c2.Transaction(testCtx(t), func() error {
			close(secondIn)
			_, err := c2.Transmit(context.Background(), []byte{0x00, 0xA4, 0x04, 0x00})
			return err
		})
	}()
	select {
	case <-secondIn:
		t.Fatal("second transaction began while the first was open")
	case err := <-first:
		t.Fatalf("first transaction ended early: %v", err)
	default:
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-second:
		if err != nil {
			t.Fatalf("second transaction: %v", err)
		}
	case <-time.After(eventTimeout):
		t.Fatal("second transaction did not begin after the first ended")
	}
}

// Reset resets the card; a reset done through another connection shows up on
// this one as ErrCardReset once, and the connection keeps working.
func TestCardReset(t *testing.T) {
	p := pcscenv.PCSCD(t)
	tc, c1 := connectCard(t, p, 0, nil)
	c2, err := Connect(testCtx(t), p.ReaderName(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	before := tc.resets.Load()
	if err := c2.Reset(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if tc.resets.Load() == before {
		t.Fatal("the card saw no reset")
	}
	if !bytes.Equal(c2.ATR(), testATR) {
		t.Fatalf("ATR after reset = % X", c2.ATR())
	}
	cmd := []byte{0x00, 0xA4, 0x04, 0x00}
	_, err = c1.Transmit(testCtx(t), cmd)
	if !errors.Is(err, ErrCardReset) || errors.Is(err, hwerr.ErrRemoved) {
		t.Fatalf("Transmit after another connection's reset = %v, want ErrCardReset", err)
	}
	if _, err := c1.Transmit(testCtx(t), cmd); err != nil {
		t.Fatalf("Transmit after acknowledging the reset: %v", err)
	}
}

func TestCardClosed(t *testing.T) {
	p := pcscenv.PCSCD(t)
	_, c := connectCard(t, p, 0, nil)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transmit(testCtx(t), []byte{0x00, 0xA4, 0x04, 0x00}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Transmit after Close = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Close does not wait for a Transmit in flight; the connection is released
// when that call returns, and later calls fail with ErrClosed.
func TestCardCloseDuringTransmit(t *testing.T) {
	_, c, got, release, errc := blockedTransmit(t)
	<-got
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(eventTimeout):
		t.Fatal("Close waited for the Transmit in flight")
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("the Transmit in flight: %v", err)
	}
	if _, err := c.Transmit(testCtx(t), []byte{0x00, 0xA4, 0x04, 0x00}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Transmit after Close = %v, want ErrClosed", err)
	}
}

func TestCardCanceledContext(t *testing.T) {
	p := pcscenv.PCSCD(t)
	_, c := connectCard(t, p, 0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Transmit(ctx, []byte{0x00, 0xA4, 0x04, 0x00}); !errors.Is(err, hwerr.ErrCanceled) {
		t.Fatalf("Transmit with a cancelled ctx = %v, want ErrCanceled", err)
	}
}

// blockedTransmit connects to a test card in reader 0 that holds the
// command 00 EE until release is closed, and starts a Transmit of it; got
// fires when the card has the command, errc gets Transmit's result.
func blockedTransmit(t *testing.T) (tc *testCard, c *Card, got, release chan struct{}, errc chan error) {
	t.Helper()
	got, release = make(chan struct{}, 1), make(chan struct{})
	tc, c = connectCard(t, pcscenv.PCSCD(t), 0, func(cmd []byte) []byte {
		if cmd[1] == 0xEE {
			got <- struct{}{}
			<-release
		}
		return []byte{0x90, 0x00}
	})
	errc = make(chan error, 1)
	go func() {
		_, err := c.Transmit(context.Background(), []byte{0x00, 0xEE, 0x00, 0x00})
		errc <- err
	}()
	return tc, c, got, release, errc
}

// BenchmarkTransmit measures one trivial APDU through pcscd and vpcd; with
// TCP_QUICKACK on the card side it should take tens of microseconds, not the
// ~40 ms of a delayed ACK.
// It reports allocations: the receive buffer is the card's own, reused, so
// an APDU costs its response's copy, not ebfe/scard's 64 KiB buffer.
func BenchmarkTransmit(b *testing.B) {
	p := pcscenv.PCSCD(b)
	_, c := connectCard(b, p, 0, nil)
	ctx := context.Background()
	cmd := []byte{0x00, 0xA4, 0x04, 0x00}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Transmit(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
}

// Card is the byte transport under pcsc/apdu.
var _ apdu.Transmitter = (*Card)(nil)

// BenchmarkTransaction measures an empty uncontended PC/SC transaction
// (SCardBeginTransaction, SCardEndTransaction) and its allocations.
func BenchmarkTransaction(b *testing.B) {
	p := pcscenv.PCSCD(b)
	_, c := connectCard(b, p, 0, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Transaction(ctx, func() error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// TestScardCardLayout: Card's own SCardTransmit reads the handle and protocol
// out of ebfe/scard's Card, whose layout the pinned module must still have
// (else every APDU would fall back to a 64 KiB allocation).
func TestScardCardLayout(t *testing.T) {
	if !rawTransmit {
		t.Fatal("ebfe/scard's Card no longer has the layout {handle uintptr; activeProtocol Protocol}: update scardCard")
	}
}

// TestResponsesOutliveTheReceiveBuffer: a response stays as it was after
// later APDUs reuse the card's receive buffer, and an uncontended
// transaction allocates nothing beyond its first.
func TestResponsesOutliveTheReceiveBuffer(t *testing.T) {
	p := pcscenv.PCSCD(t)
	_, c := connectCard(t, p, 0, nil)
	ctx := testCtx(t)
	first, err := c.Transmit(ctx, []byte{0x00, 0xCB, 0x3F, 0xFF, 0x03, 0x5C, 0x01, 0x7E})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transmit(ctx, []byte{0x00, 0xCB, 0x3F, 0xFF, 0x03, 0x11, 0x22, 0x33}); err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x5C, 0x01, 0x7E, 0x90, 0x00}; !bytes.Equal(first, want) {
		t.Fatalf("first response became % X, want % X", first, want)
	}
	empty := func() error { return nil }
	if err := c.Transaction(ctx, empty); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() {
		if err := c.Transaction(ctx, empty); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("an uncontended transaction allocates %v times, want 0", n)
	}
}
