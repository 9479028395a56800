package vicc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/pcsc/vpcd"
)

// okCard answers every APDU with 9000 and counts power-offs.
type okCard struct{ offs atomic.Int32 }

func (c *okCard) ATR() []byte            { return []byte{0x3B, 0x80, 0x80, 0x01, 0x01} }
func (c *okCard) Reset()                 {}
func (c *okCard) PowerOff()              { c.offs.Add(1) }
func (c *okCard) Transmit([]byte) []byte { return []byte{0x90, 0x00} }

// fakeVPCD stands in for a vpcd reader's port: the slot dials it, the test
// accepts and plays the reader's side.
type fakeVPCD struct {
	t *testing.T
	l net.Listener
}

func newFakeVPCD(t *testing.T) *fakeVPCD {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &fakeVPCD{t, l}
}

func (v *fakeVPCD) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", v.l.Addr().String())
}

// accept takes the card's next connection.
func (v *fakeVPCD) accept() net.Conn {
	v.t.Helper()
	c, err := v.l.Accept()
	if err != nil {
		v.t.Fatal(err)
	}
	v.t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends one message on conn and returns the card's answer.
func (v *fakeVPCD) exchange(conn net.Conn, msg ...byte) []byte {
	v.t.Helper()
	if err := vpcd.WriteFrame(conn, msg); err != nil {
		v.t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := vpcd.ReadFrame(conn)
	if err != nil {
		v.t.Fatal(err)
	}
	return b
}

func TestSlotInsertRemoveReconnect(t *testing.T) {
	v := newFakeVPCD(t)
	card := &okCard{}
	s := NewSlot(card, v.dial)
	if s.Inserted() {
		t.Fatal("new slot inserted")
	}
	if err := s.Insert(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(context.Background()); !errors.Is(err, ErrInserted) {
		t.Errorf("second Insert = %v", err)
	}
	conn := v.accept()
	if atr := v.exchange(conn, vpcd.CtrlATR); !bytes.Equal(atr, card.ATR()) {
		t.Errorf("ATR = %X", atr)
	}
	// vpcd drops the connection: without reconnection the card is removed.
	conn.Close()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("slot still serving after vpcd closed")
	}
	if s.Inserted() {
		t.Error("Inserted after vpcd closed")
	}
	s.SetReconnect(10 * time.Millisecond)
	if err := s.Insert(context.Background()); err != nil {
		t.Fatal(err)
	}
	v.accept().Close()
	conn = v.accept() // the card dials again
	if got := v.exchange(conn, 0x00, 0xA4, 0x04, 0x00); !bytes.Equal(got, []byte{0x90, 0x00}) {
		t.Errorf("after reconnect: %X", got)
	}
	offs := card.offs.Load()
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	if s.Inserted() || card.offs.Load() <= offs {
		t.Errorf("after Remove: inserted %v, power-offs %d (was %d)", s.Inserted(), card.offs.Load(), offs)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := vpcd.ReadFrame(conn); !errors.Is(err, io.EOF) {
		t.Errorf("reader side after Remove: %v, want EOF", err)
	}
}
