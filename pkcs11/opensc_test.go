package pkcs11

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/internal/testenv/pcscenv"
	"golang.org/x/sys/unix"
)

// vpcdCard is the card side that serveCard plays over vpcd.
type vpcdCard interface {
	ATR() []byte
	Reset()
	PowerOff()
	Transmit(apdu []byte) []byte
}

// blankCard is a card that knows no application: every APDU gets 6A82.
type blankCard struct{}

func (blankCard) ATR() []byte              { return []byte{0x3B, 0x80, 0x80, 0x01, 0x01} }
func (blankCard) Reset()                   {}
func (blankCard) PowerOff()                {}
func (blankCard) Transmit(_ []byte) []byte { return []byte{0x6A, 0x82} }

// serveCard plays card on a vpcd connection (TESTING.md, vpcd wire
// protocol: 2-byte length and payload; a 1-byte payload is a control code)
// until the connection closes. Like any card side of vpcd it sets
// TCP_NODELAY and re-arms TCP_QUICKACK after each read, or every APDU stalls
// for a delayed ACK.
func serveCard(conn net.Conn, card vpcdCard) {
	tcp, _ := conn.(*net.TCPConn)
	if tcp != nil {
		_ = tcp.SetNoDelay(true)
	}
	for {
		msg, err := readVPCD(conn, tcp)
		if err != nil {
			return
		}
		var answer []byte
		switch {
		case len(msg) == 1 && msg[0] == 0:
			card.PowerOff()
			continue
		case len(msg) == 1 && msg[0] == 2:
			card.Reset()
			continue
		case len(msg) == 1 && msg[0] == 4:
			answer = card.ATR()
		case len(msg) == 1:
			continue
		default:
			answer = card.Transmit(msg)
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(answer)))
		if _, err := conn.Write(append(out, answer...)); err != nil {
			return
		}
	}
}

// readVPCD reads one vpcd message.
func readVPCD(conn net.Conn, tcp *net.TCPConn) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, err
	}
	quickAck(tcp)
	msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(conn, msg); err != nil {
		return nil, err
	}
	quickAck(tcp)
	return msg, nil
}

// TestOpenSCRescan loads OpenSC's module in the helper against a private
// pcscd, with the helper's watcher blocked in C_WaitForSlotEvent (OpenSC
// 0.23 accepts the blocking call but, over vpcd here, does not return on
// insertion, so the daemon's PC/SC events drive Rescan). Listing still works
// while the watcher waits, a card OpenSC cannot read becomes no
// authenticator, and the slots are listed again after insertion and removal.
func TestOpenSCRescan(t *testing.T) {
	testenv.RequireFiles(t, OpenSCModule)
	pcsc := pcscenv.PCSCD(t)
	b := NewBackend(Config{Modules: []string{OpenSCModule}, HelperPath: buildHelper(t), Env: pcsc.Env()}, nil)
	host := newFakeHost()
	runBackend(t, b, host)
	scans := func() int { b.mu.Lock(); defer b.mu.Unlock(); return b.scans }
	waitFor(t, b, "the first scan", func() bool { return scans() >= 1 })
	if st := b.Status(); st.State != device.StateUp {
		t.Fatalf("status %+v", st)
	}

	conn, err := pcsc.DialReader(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	go serveCard(conn, blankCard{})
	before := scans()
	b.Rescan()
	waitFor(t, b, "a scan after the insertion", func() bool { return scans() > before })
	if host.count() != 0 {
		t.Errorf("a card with no application became %d authenticators", host.count())
	}
	conn.Close()
	before = scans()
	b.Rescan()
	waitFor(t, b, "a scan after the removal", func() bool { return scans() > before })
}

// quickAck re-arms TCP_QUICKACK, which Linux clears after use.
func quickAck(c *net.TCPConn) {
	if c == nil {
		return
	}
	if raw, err := c.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
		})
	}
}
