// Package pivcard is an emulated PIV card (the card side of NIST SP 800-73-4
// Part 2): the PIV application with its data objects, PIN and PUK with retry
// counters, ECC P-256, P-384 and RSA-2048 keys used through GENERAL
// AUTHENTICATE, and the management key (3DES or AES) under which
// provisioning tools generate keys and write objects. It answers raw command APDUs, so it can sit behind vpcd (a
// real pcscd reader, see packages vpcd and pcsc/pcsctest/vicc) or behind an in-process
// apdu.Transmitter in tests. It never panics on any input.
package pivcard

import (
	"bytes"
	"sync"

	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
)

// maxChain bounds the data a chain of commands (CLA 10) may collect; the
// largest command this card takes is an RSA-2048 GENERAL AUTHENTICATE.
const maxChain = 4096

// atr is a T=1 answer-to-reset (TS 3B, T0 8A: TD1 and ten historical bytes,
// TD1 80: TD2, TD2 01: T=1) whose historical bytes "hwauthdPIV" match no
// driver table of OpenSC, followed by its check byte.
var atr = withTCK([]byte{0x3B, 0x8A, 0x80, 0x01, 'h', 'w', 'a', 'u', 't', 'h', 'd', 'P', 'I', 'V'})

// withTCK appends the check byte TCK, the XOR of all bytes after TS
// (ISO/IEC 7816-3 §8.2.5).
func withTCK(b []byte) []byte {
	var x byte
	for _, c := range b[1:] {
		x ^= c
	}
	return append(b, x)
}

// Card is the PIV card application over a Store: New and Load make the
// emulated test card with software keys, NewApplet one over any Store. It is
// safe for use from many goroutines: one mutex serializes every command, as
// a card's single I/O line does.
type Card struct {
	mu    sync.Mutex
	store Store

	// Volatile security status (SP 800-73-4 Part 2 §3.2.1), lost on reset
	// and power-off.
	verified     bool // PIN verified
	justVerified bool // PIN verified and not yet used by a PIN-always key
	mgmVerified  bool // management key authenticated
	mgmPending   mgmAuth
	pin          []byte // the padded PIN verified, for stores that sign with it

	pending []byte     // response data left for GET RESPONSE
	chain   *chainPart // command chaining in progress
}

// chainPart is a command chain being collected (ISO/IEC 7816-4 §5.4.2).
type chainPart struct {
	ins, p1, p2 byte
	data        []byte
}

// NewApplet returns the PIV applet over store, powered on with no security
// status.
func NewApplet(store Store) *Card { return &Card{store: store} }

// ATR returns the card's answer-to-reset.
func (c *Card) ATR() []byte { return bytes.Clone(atr) }

// Reset is a warm reset: the security status, pending response data and any
// command chain are lost; the PIV application stays the current one, as SP
// 800-73-4 makes it the default application.
func (c *Card) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
}

// PowerOff removes power from the card, which loses what Reset loses.
func (c *Card) PowerOff() { c.Reset() }

func (c *Card) resetLocked() {
	c.dropPINLocked()
	c.mgmVerified = false
	c.mgmPending = mgmAuth{}
	c.pending, c.chain = nil, nil
}

// Transmit processes one command APDU and returns the response APDU. It
// never panics; malformed APDUs get an error status word.
func (c *Card) Transmit(b []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transmitLocked(b).Bytes()
}

func (c *Card) transmitLocked(b []byte) apdu.Response {
	cmd, err := apdu.ParseCommand(b)
	if err != nil {
		c.pending, c.chain = nil, nil
		return status(apdu.SWWrongLength)
	}
	if cmd.INS == piv.InsGetResponse && cmd.CLA == 0 {
		return c.getResponse(cmd)
	}
	c.pending = nil
	if cmd.CLA&^0x10 != 0 {
		c.chain = nil
		return status(apdu.SWClassNotSupported)
	}
	cmd, more := c.collectChain(cmd)
	if more != nil {
		return *more
	}
	data, sw := c.dispatch(cmd)
	return c.output(data, sw, cmd.Le)
}

// collectChain adds a chained command to the chain and answers it, or
// completes cmd with the data collected before it.
func (c *Card) collectChain(cmd apdu.Command) (apdu.Command, *apdu.Response) {
	ch := c.chain
	if ch != nil && (ch.ins != cmd.INS || ch.p1 != cmd.P1 || ch.p2 != cmd.P2) {
		ch = nil // a different command ends the chain
	}
	if cmd.CLA&0x10 == 0 {
		c.chain = nil
		if ch != nil {
			cmd.Data = append(ch.data, cmd.Data...)
		}
		return cmd, nil
	}
	if ch == nil {
		ch = &chainPart{ins: cmd.INS, p1: cmd.P1, p2: cmd.P2}
	}
	if len(ch.data)+len(cmd.Data) > maxChain {
		c.chain = nil
		r := status(apdu.SWWrongLength)
		return cmd, &r
	}
	ch.data = append(ch.data, cmd.Data...)
	c.chain = ch
	r := status(apdu.SWSuccess)
	return cmd, &r
}

// dispatch runs one complete command of the PIV application.
func (c *Card) dispatch(cmd apdu.Command) ([]byte, uint16) {
	switch cmd.INS {
	case piv.InsSelect:
		return c.selectApp(cmd)
	case piv.InsGetData:
		return c.getData(cmd)
	case piv.InsVerify:
		return nil, c.verify(cmd)
	case piv.InsChangeReferenceData:
		return nil, c.changeReference(cmd)
	case piv.InsResetRetryCounter:
		return nil, c.resetRetryCounter(cmd)
	case piv.InsGeneralAuthenticate:
		if cmd.P2 == keyRefMgm {
			return c.mgmAuthenticate(cmd)
		}
		return c.generalAuthenticate(cmd)
	case insGetChal:
		return c.getChallenge(cmd)
	case insSetMgm:
		return nil, c.setMgmKey(cmd)
	case insPutData:
		return nil, c.putData(cmd)
	case insGenerate:
		return c.generate(cmd)
	default:
		// GET VERSION (FD), GET SERIAL (F8) and the other YubiKey commands
		// are refused as on a PIV card of another make: clients such as
		// yubico-piv-tool and OpenSC carry on without them.
		return nil, apdu.SWInsNotSupported
	}
}

// output answers with at most le bytes (256 when absent) and keeps the rest
// for GET RESPONSE, announcing it with 61xx.
func (c *Card) output(data []byte, sw uint16, le int) apdu.Response {
	if sw != apdu.SWSuccess {
		return status(sw)
	}
	c.pending = data
	return c.nextPart(le)
}

// getResponse answers GET RESPONSE (ISO/IEC 7816-4 §7.6.1) from the pending
// data.
func (c *Card) getResponse(cmd apdu.Command) apdu.Response {
	c.chain = nil
	if len(c.pending) == 0 {
		return status(apdu.SWConditionsNotMet)
	}
	if cmd.P1 != 0 || cmd.P2 != 0 {
		c.pending = nil
		return status(apdu.SWIncorrectP1P2)
	}
	return c.nextPart(cmd.Le)
}

func (c *Card) nextPart(le int) apdu.Response {
	if le == 0 {
		le = apdu.MaxShortLe
	}
	n := min(le, len(c.pending))
	r := apdu.Response{Data: c.pending[:n], SW: apdu.SWSuccess}
	c.pending = c.pending[n:]
	if rest := len(c.pending); rest > 0 {
		r.SW = apdu.SWBytesRemaining | uint16(min(rest, 256)&0xFF)
	} else {
		c.pending = nil
	}
	return r
}

func status(sw uint16) apdu.Response { return apdu.Response{SW: sw} }
