package apdu

import (
	"errors"
	"fmt"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Status words used by this project (ISO/IEC 7816-4 §5.6, SP 800-73-4 Part 2
// §3 tables of status words). 61xx, 63Cx and 6Cxx carry a count in SW2.
const (
	SWSuccess             uint16 = 0x9000
	SWBytesRemaining      uint16 = 0x6100 // 61xx: xx more bytes with GET RESPONSE
	SWVerifyFail          uint16 = 0x63C0 // 63Cx: x tries left
	SWMemoryFailure       uint16 = 0x6581
	SWWrongLength         uint16 = 0x6700
	SWLastCommandExpected uint16 = 0x6883
	SWSecurityStatus      uint16 = 0x6982
	SWAuthBlocked         uint16 = 0x6983
	SWConditionsNotMet    uint16 = 0x6985
	SWIncorrectData       uint16 = 0x6A80
	SWFuncNotSupported    uint16 = 0x6A81
	SWFileNotFound        uint16 = 0x6A82
	SWNotEnoughMemory     uint16 = 0x6A84
	SWIncorrectP1P2       uint16 = 0x6A86
	SWRefDataNotFound     uint16 = 0x6A88
	SWWrongLe             uint16 = 0x6C00 // 6Cxx: resend with Le xx
	SWInsNotSupported     uint16 = 0x6D00
	SWClassNotSupported   uint16 = 0x6E00
	SWUnknown             uint16 = 0x6F00
)

// StatusError is a status word other than 9000. It answers errors.Is with
// the hwerr class that fits (see Class) and errors.As with
// *hwerr.PINIncorrect for 63Cx.
type StatusError struct {
	SW uint16
}

// statusNames names the status words of ISO/IEC 7816-4 §5.6 that PIV cards
// use.
var statusNames = map[uint16]string{
	0x6281:                "part of returned data may be corrupted",
	0x6300:                "verification failed",
	SWMemoryFailure:       "memory failure",
	SWWrongLength:         "wrong length",
	0x6882:                "secure messaging not supported",
	SWLastCommandExpected: "last command of the chain expected",
	0x6884:                "command chaining not supported",
	SWSecurityStatus:      "security status not satisfied",
	SWAuthBlocked:         "authentication method blocked",
	0x6984:                "reference data not usable",
	SWConditionsNotMet:    "conditions of use not satisfied",
	0x6986:                "command not allowed",
	SWIncorrectData:       "incorrect parameters in the data field",
	SWFuncNotSupported:    "function not supported",
	SWFileNotFound:        "file or application not found",
	SWNotEnoughMemory:     "not enough memory space",
	SWIncorrectP1P2:       "incorrect parameters P1-P2",
	SWRefDataNotFound:     "referenced data not found",
	0x6B00:                "wrong parameters P1-P2",
	SWInsNotSupported:     "instruction not supported",
	SWClassNotSupported:   "class not supported",
	SWUnknown:             "no precise diagnosis",
}

// Error names the status word, for example "6982 security status not
// satisfied".
func (e StatusError) Error() string {
	switch e.SW & 0xFF00 {
	case SWBytesRemaining:
		return fmt.Sprintf("%04X %d bytes remaining", e.SW, e.SW&0xFF)
	case SWWrongLe:
		return fmt.Sprintf("%04X wrong Le, %d bytes available", e.SW, e.SW&0xFF)
	}
	if n, ok := e.Retries(); ok {
		return fmt.Sprintf("%04X verification failed, %d tries left", e.SW, n)
	}
	if name, ok := statusNames[e.SW]; ok {
		return fmt.Sprintf("%04X %s", e.SW, name)
	}
	return fmt.Sprintf("%04X unknown status", e.SW)
}

// Retries reports the tries left that a 63Cx status word carries.
func (e StatusError) Retries() (int, bool) {
	if e.SW&0xFFF0 == SWVerifyFail {
		return int(e.SW & 0x0F), true
	}
	return 0, false
}

// Class returns the hwerr class of the status word: 63Cx a PIN failure
// (*hwerr.PINIncorrect), 6983 hwerr.ErrPINBlocked, 6982
// hwerr.ErrPINRequired, 6A82 and 6A88 hwerr.ErrNotFound, 6A80, 6A86 and 6700
// hwerr.ErrInvalidInput, 6D00, 6E00 and 6A81 hwerr.ErrNotSupported, 6A84
// hwerr.ErrLimit, and hwerr.ErrProtocol for every other status word.
func (e StatusError) Class() error {
	if n, ok := e.Retries(); ok {
		return &hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(n)}
	}
	switch e.SW {
	case SWAuthBlocked:
		return hwerr.ErrPINBlocked
	case SWSecurityStatus:
		return hwerr.ErrPINRequired
	case SWFileNotFound, SWRefDataNotFound:
		return hwerr.ErrNotFound
	case SWIncorrectData, SWWrongLength, SWIncorrectP1P2:
		return hwerr.ErrInvalidInput
	case SWInsNotSupported, SWClassNotSupported, SWFuncNotSupported:
		return hwerr.ErrNotSupported
	case SWNotEnoughMemory:
		return hwerr.ErrLimit
	default:
		return hwerr.ErrProtocol
	}
}

// Is reports whether target is the hwerr class of the status word, so that
// errors.Is(err, hwerr.ErrPINBlocked) holds for a wrapped 6983.
func (e StatusError) Is(target error) bool {
	return e.Class() == target
}

// As sets a **hwerr.PINIncorrect target for a 63Cx status word.
func (e StatusError) As(target any) bool {
	p, ok := target.(**hwerr.PINIncorrect)
	if !ok {
		return false
	}
	var pin *hwerr.PINIncorrect
	if !errors.As(e.Class(), &pin) {
		return false
	}
	*p = pin
	return true
}
