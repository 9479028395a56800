// Package vpcd is the card side of the protocol of vsmartcard's vpcd reader
// driver for pcscd: a virtual card connects to the reader's TCP port and
// answers its messages. Every message is a 2-byte big-endian length and a
// payload; a 1-byte payload from the reader is a control code (0 power off,
// 1 power on, 2 reset, 4 get ATR, answered with the ATR), a longer one is a
// command APDU answered with the response APDU. Closing the connection is
// card removal.
//
// hwauthd's own reader channel (package vreader) speaks this protocol to its
// reader driver; the test emulator pcsc/pcsctest/vicc speaks it to
// vsmartcard's vpcd.
package vpcd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// Card is what vpcd talks to: an emulated card such as *pivcard.Card.
type Card interface {
	ATR() []byte
	Reset()
	PowerOff()
	Transmit(apdu []byte) []byte
}

// Control codes of vpcd (vsmartcard vpcd.h).
const (
	CtrlOff   = 0
	CtrlOn    = 1
	CtrlReset = 2
	CtrlATR   = 4
)

// MaxPayload is the largest payload the 2-byte length can announce.
const MaxPayload = 0xFFFF

// ErrEmptyFrame is returned by ReadFrame for a frame of length zero, which
// vpcd never sends.
var ErrEmptyFrame = errors.New("vpcd: empty frame")

// ReadFrame reads one message: a 2-byte big-endian length and the payload.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint16(hdr[:])
	if n == 0 {
		return nil, ErrEmptyFrame
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("vpcd: frame of %d bytes: %w", n, err)
	}
	return b, nil
}

// WriteFrame writes one message with a single write, so the reader never
// waits for the second half of a split message.
func WriteFrame(w io.Writer, payload []byte) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("vpcd: payload of %d bytes too long", len(payload))
	}
	b := make([]byte, 2, 2+len(payload))
	binary.BigEndian.PutUint16(b, uint16(len(payload)))
	_, err := w.Write(append(b, payload...))
	return err
}

// Serve answers vpcd's messages on conn with card until the connection
// closes (vpcd gone: nil) or ctx ends (ctx.Err()); it closes conn when it
// returns. On TCP connections it sets TCP_NODELAY and re-arms TCP_QUICKACK
// after every read, since vpcd sends length and payload in two segments and
// delayed ACKs would stall every APDU by about 40 ms.
func Serve(ctx context.Context, conn net.Conn, card Card) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	quickAck(conn)
	in := quickAckReader{conn}
	for {
		msg, err := ReadFrame(in)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
				return nil
			}
			return err
		}
		if err := answer(conn, card, msg); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("vpcd: answer: %w", err)
		}
	}
}

// quickAckReader re-arms TCP_QUICKACK after every read: vpcd sends a frame's
// length and payload as two segments and waits for the first to be
// acknowledged, so the ACK must not be delayed between them either (the
// kernel clears QUICKACK again after it acknowledges).
type quickAckReader struct{ conn net.Conn }

func (q quickAckReader) Read(p []byte) (int, error) {
	n, err := q.conn.Read(p)
	quickAck(q.conn)
	return n, err
}

// answer handles one message from the reader.
func answer(w io.Writer, card Card, msg []byte) error {
	if len(msg) > 1 {
		return WriteFrame(w, card.Transmit(msg))
	}
	switch msg[0] {
	case CtrlOff:
		card.PowerOff()
	case CtrlOn, CtrlReset:
		card.Reset()
	case CtrlATR:
		return WriteFrame(w, card.ATR())
	}
	return nil
}
