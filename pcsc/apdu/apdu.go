// Package apdu encodes and parses ISO/IEC 7816-4 command and response APDUs,
// decodes status words into typed errors, and exchanges commands with a card
// over a Transmitter, handling command chaining, 61xx GET RESPONSE chaining
// and 6Cxx Le correction (ISO/IEC 7816-4 §5.1, §5.3.3, §5.6).
package apdu

import (
	"errors"
	"fmt"
)

// Short APDU limits (ISO/IEC 7816-4 §5.1).
const (
	// MaxShortData is the most data a short command APDU carries.
	MaxShortData = 255
	// MaxShortLe is the largest Le of a short command APDU (encoded as 00).
	MaxShortLe = 256
	// MaxExtendedLe is the largest Le of an extended command APDU (encoded as
	// 0000).
	MaxExtendedLe = 65536
)

// Command is a command APDU. Le is the number of response bytes expected: 0
// means no Le field, 256 is encoded as 00 in a short APDU.
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	Le               int
}

// errMalformed is the base of every encoding and parsing failure.
var errMalformed = errors.New("apdu: malformed")

// Bytes encodes c as a short APDU (cases 1 to 4). It fails when Data is
// longer than MaxShortData or Le is outside 0..MaxShortLe; Exchange splits
// long data with command chaining before encoding.
func (c Command) Bytes() ([]byte, error) {
	if len(c.Data) > MaxShortData {
		return nil, fmt.Errorf("%w: %d data bytes do not fit a short APDU", errMalformed, len(c.Data))
	}
	if c.Le < 0 || c.Le > MaxShortLe {
		return nil, fmt.Errorf("%w: Le %d does not fit a short APDU", errMalformed, c.Le)
	}
	b := make([]byte, 0, 6+len(c.Data))
	b = append(b, c.CLA, c.INS, c.P1, c.P2)
	if len(c.Data) > 0 {
		b = append(b, byte(len(c.Data)))
		b = append(b, c.Data...)
	}
	if c.Le > 0 {
		b = append(b, byte(c.Le)) // 256 wraps to 00
	}
	return b, nil
}

// ParseCommand decodes a command APDU in short or extended form (ISO/IEC
// 7816-4 §5.1, cases 1 to 4). It returns an error for lengths that do not
// match the APDU's size. Data aliases b.
func ParseCommand(b []byte) (Command, error) {
	if len(b) < 4 {
		return Command{}, fmt.Errorf("%w: %d bytes is shorter than a header", errMalformed, len(b))
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, nil
	case len(body) == 1: // case 2S
		c.Le = shortLe(body[0])
		return c, nil
	case body[0] != 0:
		return parseShortBody(c, body)
	default:
		return parseExtendedBody(c, body)
	}
}

// parseShortBody decodes Lc, data and an optional Le of a short APDU.
func parseShortBody(c Command, body []byte) (Command, error) {
	lc := int(body[0])
	switch len(body) {
	case 1 + lc: // case 3S
	case 2 + lc: // case 4S
		c.Le = shortLe(body[1+lc])
	default:
		return Command{}, fmt.Errorf("%w: Lc %d does not match %d body bytes", errMalformed, lc, len(body))
	}
	c.Data = body[1 : 1+lc]
	return c, nil
}

// parseExtendedBody decodes the body of an extended APDU, which starts with
// a 00 byte.
func parseExtendedBody(c Command, body []byte) (Command, error) {
	if len(body) < 3 {
		return Command{}, fmt.Errorf("%w: extended length field truncated", errMalformed)
	}
	n := int(body[1])<<8 | int(body[2])
	if len(body) == 3 { // case 2E
		c.Le = extendedLe(n)
		return c, nil
	}
	if n == 0 {
		return Command{}, fmt.Errorf("%w: extended Lc of 0", errMalformed)
	}
	switch len(body) {
	case 3 + n: // case 3E
	case 5 + n: // case 4E
		c.Le = extendedLe(int(body[3+n])<<8 | int(body[4+n]))
	default:
		return Command{}, fmt.Errorf("%w: extended Lc %d does not match %d body bytes", errMalformed, n, len(body))
	}
	c.Data = body[3 : 3+n]
	return c, nil
}

func shortLe(b byte) int {
	if b == 0 {
		return MaxShortLe
	}
	return int(b)
}

func extendedLe(n int) int {
	if n == 0 {
		return MaxExtendedLe
	}
	return n
}

// Response is a response APDU: the data field and the status word SW1SW2.
type Response struct {
	Data []byte
	SW   uint16
}

// ParseResponse splits a response APDU into data and status word. It fails
// when b is shorter than the two status bytes. Data aliases b.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, fmt.Errorf("%w: response of %d bytes has no status word", errMalformed, len(b))
	}
	n := len(b) - 2
	return Response{Data: b[:n:n], SW: uint16(b[n])<<8 | uint16(b[n+1])}, nil
}

// Bytes encodes r as a response APDU (data followed by SW1 SW2).
func (r Response) Bytes() []byte {
	b := make([]byte, 0, len(r.Data)+2)
	b = append(b, r.Data...)
	return append(b, byte(r.SW>>8), byte(r.SW))
}

// Err returns nil when r.SW is 9000 and a StatusError otherwise.
func (r Response) Err() error {
	if r.SW == SWSuccess {
		return nil
	}
	return StatusError{SW: r.SW}
}
