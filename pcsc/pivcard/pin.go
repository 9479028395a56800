package pivcard

import (
	"crypto/sha256"
	"crypto/subtle"

	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
)

// padLen is the length of a PIN or PUK as the card receives it, padded with
// FF (SP 800-73-4 Part 2 §2.4.3).
const padLen = 8

// secret is a PIN or PUK as the card keeps it: a salted hash, never the
// value, and its retry counter.
type secret struct {
	Hash []byte `json:"hash"`
	Max  int    `json:"max"`
	Left int    `json:"left"`
}

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

// hashSecret returns the salted hash of a padded PIN or PUK.
func (c *Card) hashSecret(padded []byte) []byte {
	h := sha256.New()
	h.Write(c.st.Salt)
	h.Write(padded)
	return h.Sum(nil)
}

// check compares a padded value with s, counting a failure down (SP 800-73-4
// Part 2 §3.2.1) and restoring the counter on success. It returns 9000, 63Cx
// or 6983, or 6581 when the new counter cannot be saved.
func (c *Card) check(s *secret, padded []byte) uint16 {
	if s.Left <= 0 {
		return apdu.SWAuthBlocked
	}
	if subtle.ConstantTimeCompare(c.hashSecret(padded), s.Hash) == 1 {
		if s.Left == s.Max {
			return apdu.SWSuccess
		}
		s.Left = s.Max
		return c.persist(apdu.SWSuccess)
	}
	s.Left--
	return c.persist(apdu.SWVerifyFail | uint16(min(s.Left, 15)))
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
		c.verified, c.justVerified = false, false
		return apdu.SWSuccess
	case cmd.P1 != 0x00:
		return apdu.SWIncorrectP1P2
	case len(cmd.Data) == 0:
		return c.pinStatus()
	case len(cmd.Data) != padLen:
		return apdu.SWIncorrectData
	}
	sw := c.check(&c.st.PIN, cmd.Data)
	c.verified = sw == apdu.SWSuccess
	c.justVerified = c.verified
	return sw
}

// pinStatus answers an empty VERIFY: 9000 when verified, 6983 when blocked,
// else 63Cx with the tries left.
func (c *Card) pinStatus() uint16 {
	switch {
	case c.st.PIN.Left <= 0:
		return apdu.SWAuthBlocked
	case c.verified:
		return apdu.SWSuccess
	default:
		return apdu.SWVerifyFail | uint16(min(c.st.PIN.Left, 15))
	}
}

// changeReference implements CHANGE REFERENCE DATA (SP 800-73-4 Part 2
// §3.2.2) for the PIN (P2 80) and the PUK (P2 81): data is the padded old
// value followed by the padded new one.
func (c *Card) changeReference(cmd apdu.Command) uint16 {
	if cmd.P1 != 0x00 {
		return apdu.SWIncorrectP1P2
	}
	var s *secret
	switch cmd.P2 {
	case piv.KeyRefPIN:
		s = &c.st.PIN
	case piv.KeyRefPUK:
		s = &c.st.PUK
	default:
		return apdu.SWRefDataNotFound
	}
	if len(cmd.Data) != 2*padLen {
		return apdu.SWIncorrectData
	}
	if sw := c.check(s, cmd.Data[:padLen]); sw != apdu.SWSuccess {
		if cmd.P2 == piv.KeyRefPIN {
			c.verified, c.justVerified = false, false
		}
		return sw
	}
	if !validPadded(cmd.Data[padLen:]) {
		return apdu.SWIncorrectData
	}
	s.Hash = c.hashSecret(cmd.Data[padLen:])
	return c.persist(apdu.SWSuccess)
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
	if sw := c.check(&c.st.PUK, cmd.Data[:padLen]); sw != apdu.SWSuccess {
		return sw
	}
	if !validPadded(cmd.Data[padLen:]) {
		return apdu.SWIncorrectData
	}
	c.st.PIN.Hash = c.hashSecret(cmd.Data[padLen:])
	c.st.PIN.Left = c.st.PIN.Max
	c.verified, c.justVerified = false, false
	return c.persist(apdu.SWSuccess)
}

// persist saves the state when the card has a state file and returns sw, or
// 6581 (memory failure) when saving fails, as a card whose EEPROM write
// failed would.
func (c *Card) persist(sw uint16) uint16 {
	if c.path == "" {
		return sw
	}
	if err := c.saveLocked(c.path); err != nil {
		return apdu.SWMemoryFailure
	}
	return sw
}
