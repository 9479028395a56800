package pcsc

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ebfe/scard"
	"golang.org/x/sys/unix"

	"github.com/hwauthd/hwauthd/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testATR is a T=1 ATR that matches no real card driver.
var testATR = []byte{0x3B, 0x80, 0x80, 0x01, 0x01}

// vpcd control codes (one-byte messages from the reader).
const (
	vpcdPowerOff = 0
	vpcdPowerOn  = 1
	vpcdReset    = 2
	vpcdGetATR   = 4
)

// testCard is a minimal card on vpcd's wire protocol: a 2-byte big-endian
// length, then the payload; one byte from the reader is a control code, more
// is a command APDU. respond answers APDUs and may block.
type testCard struct {
	conn    net.Conn
	atr     []byte
	respond func(apdu []byte) []byte
	resets  atomic.Int32 // power-offs and resets seen
	done    chan struct{}
}

// insertCard connects a test card to vpcd reader i; t.Cleanup removes it.
func insertCard(t testing.TB, p *testenv.PCSC, i int, atr []byte, respond func([]byte) []byte) *testCard {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := p.DialReader(ctx, i)
	if err != nil {
		t.Fatal(err)
	}
	if respond == nil {
		respond = echo
	}
	c := &testCard{conn: conn, atr: atr, respond: respond, done: make(chan struct{})}
	go c.serve()
	t.Cleanup(func() {
		c.remove()
		// Leave the reader empty for the next test, as pcscd sees it.
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

// remove pulls the card: vpcd sees the connection close.
func (c *testCard) remove() { c.conn.Close() }

func (c *testCard) serve() {
	defer close(c.done)
	for {
		msg, err := c.read()
		if err != nil {
			return
		}
		var out []byte
		switch {
		case len(msg) == 1 && msg[0] == vpcdGetATR:
			out = c.atr
		case len(msg) == 1:
			if msg[0] == vpcdPowerOff || msg[0] == vpcdReset {
				c.resets.Add(1)
			}
			continue
		default:
			out = c.respond(msg)
		}
		frame := binary.BigEndian.AppendUint16(nil, uint16(len(out)))
		if _, err := c.conn.Write(append(frame, out...)); err != nil {
			return
		}
	}
}

// read reads one message. vpcd sends the length and the payload in separate
// segments, so a delayed ACK of the first would stall each APDU ~40 ms:
// TCP_QUICKACK is re-armed after every read, since the kernel clears it.
func (c *testCard) read() ([]byte, error) {
	var hdr [2]byte
	if err := c.readFull(hdr[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if err := c.readFull(msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func (c *testCard) readFull(b []byte) error {
	c.quickAck()
	_, err := io.ReadFull(c.conn, b)
	c.quickAck()
	return err
}

func (c *testCard) quickAck() {
	if raw, err := c.conn.(*net.TCPConn).SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
		})
	}
}
