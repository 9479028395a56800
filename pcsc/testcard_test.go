package pcsc

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/internal/testenv/pcscenv"
	"github.com/hwauthd/hwauthd/pcsc/pcsctest/vicc"
	"github.com/hwauthd/hwauthd/pcsc/vpcd"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testATR is a T=1 ATR that matches no real card driver.
var testATR = []byte{0x3B, 0x80, 0x80, 0x01, 0x01}

// testCard is a minimal vpcd.Card: respond answers APDUs and may block.
type testCard struct {
	atr     []byte
	respond func(apdu []byte) []byte
	resets  atomic.Int32 // resets and power-offs seen
	slot    *vicc.Slot
}

var _ vpcd.Card = (*testCard)(nil)

// ATR implements vpcd.Card.
func (c *testCard) ATR() []byte { return c.atr }

// Reset implements vpcd.Card.
func (c *testCard) Reset() { c.resets.Add(1) }

// PowerOff implements vpcd.Card.
func (c *testCard) PowerOff() { c.resets.Add(1) }

// Transmit implements vpcd.Card.
func (c *testCard) Transmit(apdu []byte) []byte { return c.respond(apdu) }

// insertCard inserts a test card into vpcd reader i (respond nil: echo);
// t.Cleanup removes it and waits until pcscd sees the reader empty.
func insertCard(t testing.TB, p *pcscenv.PCSC, i int, atr []byte, respond func([]byte) []byte) *testCard {
	t.Helper()
	if respond == nil {
		respond = echo
	}
	c := &testCard{atr: atr, respond: respond}
	c.slot = vicc.NewSlot(c, func(ctx context.Context) (net.Conn, error) { return p.DialReader(ctx, i) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.slot.Insert(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.remove()
		waitCard(t, p.ReaderName(i), false)
	})
	return c
}

// echo answers an APDU with its data field and 9000.
func echo(apdu []byte) []byte {
	var data []byte
	if len(apdu) > 5 {
		data = apdu[5 : 5+int(apdu[4])]
	}
	return append(append([]byte{}, data...), 0x90, 0x00)
}

// remove pulls the card; it returns once the card's respond has returned.
func (c *testCard) remove() { _ = c.slot.Remove() }

// waitCard blocks until pcscd reports reader with a usable card (present) or
// without one, through a context of its own: a blocking wait, not a poll.
func waitCard(t testing.TB, reader string, present bool) {
	t.Helper()
	sctx, err := scard.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	defer sctx.Release()
	st := []scard.ReaderState{{Reader: reader, CurrentState: scard.StateUnaware}}
	for {
		if err := sctx.GetStatusChange(st, eventTimeout); err != nil {
			t.Fatalf("wait for reader %s present=%v: %v", reader, present, err)
		}
		if snapshot(st[0]).CardPresent == present {
			return
		}
		st[0].CurrentState = st[0].EventState &^ scard.StateChanged
	}
}
