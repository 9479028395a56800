package pivcard

import (
	"bytes"

	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
)

// padLen is the length of a PIN or PUK as the card receives it, padded with
// FF (SP 800-73-4 Part 2 §2.4.3).
const padLen = 8

// validPadded reports whether b is 6 to 8 characters other than FF followed
// by FF padding to 8 bytes.
func validPadded(b []byte) bool {
	if len(b) != padLen {
		return false
	}
	n := 0
	for n < padLen && b[n] != 0xFF {
		n++
	}
	for _, x := range b[n:] {
		if x != 0xFF {
			return false
		}
	}
	return n >= 6
}

// keepPINLocked records a verified PIN: the security status, and the padded
// PIN itself for stores that sign with it.
func (c *Card) keepPINLocked(padded []byte) {
	c.dropPINLocked()
	c.verified, c.justVerified = true, true
	c.pin = bytes.Clone(padded)
}

// dropPINLocked resets the PIN's security status and clears the kept PIN.
func (c *Card) dropPINLocked() {
	c.verified, c.justVerified = false, false
	clear(c.pin)
	c.pin = nil
}

// verify implements VERIFY (SP 800-73-4 Part 2 §3.2.1): P1 00 with the
// padded PIN, P1 00 without data to read the retry counter, P1 FF to reset
// the security status.
func (c *Card) verify(cmd apdu.Command) uint16 {
	if cmd.P2 != piv.KeyRefPIN {
		return apdu.SWRefDataNotFound
	}
	switch {
	case cmd.P1 == 0xFF:
		if len(cmd.Data) != 0 {
			return apdu.SWWrongLength
		}
		c.dropPINLocked()
		return apdu.SWSuccess
	case cmd.P1 != 0x00:
		return apdu.SWIncorrectP1P2
	case len(cmd.Data) == 0:
		return c.pinStatus()
	case len(cmd.Data) != padLen:
		return apdu.SWIncorrectData
	}
	sw := c.store.VerifyPIN(cmd.Data)
	if sw == apdu.SWSuccess {
		c.keepPINLocked(cmd.Data)
	} else {
		c.dropPINLocked()
	}
	return sw
}

// pinStatus answers an empty VERIFY: 9000 when verified, 6983 when blocked,
// else 63Cx with the tries left.
func (c *Card) pinStatus() uint16 {
	left := c.store.PINTriesLeft()
	switch {
	case left <= 0:
		return apdu.SWAuthBlocked
	case c.verified:
		return apdu.SWSuccess
	default:
		return apdu.SWVerifyFail | uint16(min(left, 15))
	}
}

// changeReference implements CHANGE REFERENCE DATA (SP 800-73-4 Part 2
// §3.2.2) for the PIN (P2 80) and the PUK (P2 81): data is the padded old
// value followed by the padded new one.
func (c *Card) changeReference(cmd apdu.Command) uint16 {
	if cmd.P1 != 0x00 {
		return apdu.SWIncorrectP1P2
	}
	if cmd.P2 != piv.KeyRefPIN && cmd.P2 != piv.KeyRefPUK {
		return apdu.SWRefDataNotFound
	}
	if len(cmd.Data) != 2*padLen {
		return apdu.SWIncorrectData
	}
	sw := c.store.ChangeReference(cmd.P2, cmd.Data[:padLen], cmd.Data[padLen:])
	switch {
	case cmd.P2 != piv.KeyRefPIN:
	case sw == apdu.SWSuccess && c.verified:
		clear(c.pin)
		c.pin = bytes.Clone(cmd.Data[padLen:])
	case sw == apdu.SWAuthBlocked, sw&0xFFF0 == apdu.SWVerifyFail:
		c.dropPINLocked()
	}
	return sw
}

// resetRetryCounter implements RESET RETRY COUNTER (SP 800-73-4 Part 2
// §3.2.3): data is the padded PUK followed by the padded new PIN.
func (c *Card) resetRetryCounter(cmd apdu.Command) uint16 {
	if cmd.P1 != 0x00 {
		return apdu.SWIncorrectP1P2
	}
	if cmd.P2 != piv.KeyRefPIN {
		return apdu.SWRefDataNotFound
	}
	if len(cmd.Data) != 2*padLen {
		return apdu.SWIncorrectData
	}
	sw := c.store.ResetRetryCounter(cmd.Data[:padLen], cmd.Data[padLen:])
	if sw == apdu.SWSuccess {
		c.dropPINLocked()
	}
	return sw
}
