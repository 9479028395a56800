package vpcd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// echoCard answers every APDU with the APDU reversed and 9000, and counts
// resets and power-offs.
type echoCard struct {
	resets, offs atomic.Int32
}

func (c *echoCard) ATR() []byte { return []byte{0x3B, 0x80, 0x80, 0x01, 0x01} }
func (c *echoCard) Reset()      { c.resets.Add(1) }
func (c *echoCard) PowerOff()   { c.offs.Add(1) }
func (c *echoCard) Transmit(b []byte) []byte {
	out := make([]byte, 0, len(b)+2)
	for i := len(b) - 1; i >= 0; i-- {
		out = append(out, b[i])
	}
	return append(out, 0x90, 0x00)
}

// reader plays vpcd's side of one connection.
type reader struct {
	t    *testing.T
	conn net.Conn
}

func (r reader) send(payload ...byte) {
	r.t.Helper()
	if err := WriteFrame(r.conn, payload); err != nil {
		r.t.Fatal(err)
	}
}

func (r reader) recv() []byte {
	r.t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := ReadFrame(r.conn)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// listen returns a loopback listener standing in for vpcd's reader port and
// a dial function for it.
func listen(t *testing.T) (net.Listener, func(context.Context) (net.Conn, error)) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", l.Addr().String())
	}
}

func TestServeProtocol(t *testing.T) {
	l, dial := listen(t)
	card := &echoCard{}
	done := make(chan error, 1)
	go func() {
		conn, err := dial(context.Background())
		if err != nil {
			done <- err
			return
		}
		done <- Serve(context.Background(), conn, card)
	}()
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r := reader{t, conn}
	r.send(CtrlATR)
	if got := r.recv(); !bytes.Equal(got, card.ATR()) {
		t.Errorf("ATR = %X", got)
	}
	r.send(CtrlOn)
	r.send(CtrlReset)
	r.send(0x00, 0xA4, 0x04, 0x00)
	if got := r.recv(); !bytes.Equal(got, []byte{0x00, 0x04, 0xA4, 0x00, 0x90, 0x00}) {
		t.Errorf("APDU answer = %X", got)
	}
	r.send(CtrlOff)
	r.send(CtrlATR) // a round trip orders the control codes before the checks
	r.recv()
	if card.resets.Load() != 2 || card.offs.Load() != 1 {
		t.Errorf("resets %d, power-offs %d; want 2, 1", card.resets.Load(), card.offs.Load())
	}
	conn.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after vpcd closed = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the connection closed")
	}
}

func TestServeCancel(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, a, &echoCard{}) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Serve = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve ignored its context")
	}
}

func TestReadFrameErrors(t *testing.T) {
	for name, in := range map[string][]byte{"empty": {0, 0}, "short": {0, 5, 1, 2}, "header": {0}} {
		if _, err := ReadFrame(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: ReadFrame succeeded", name)
		}
	}
	if err := WriteFrame(io.Discard, make([]byte, MaxPayload+1)); err == nil {
		t.Error("WriteFrame of 65536 bytes succeeded")
	}
}

// FuzzReadFrame checks that the frame reader never panics and that what it
// reads writes back to the same bytes.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 1, 4})
	f.Add([]byte{0, 4, 0, 0xA4, 4, 0})
	f.Add([]byte{0, 0})
	f.Add([]byte{0xFF, 0xFF, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := ReadFrame(bytes.NewReader(in))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteFrame(&out, b); err != nil || !bytes.Equal(out.Bytes(), in[:2+len(b)]) {
			t.Fatalf("frame %X rewrites as %X, %v", in, out.Bytes(), err)
		}
	})
}
