package wire

import (
	"errors"
	"fmt"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Error is a failure reported by the helper: the hwerr class it belongs to,
// a message for people (never holding a PIN) and, for a wrong PIN, the tries
// left (absent when the token does not say).
type Error struct {
	Class       string      `json:"class"`
	Message     string      `json:"message"`
	RetriesLeft hwerr.Tries `json:"retries_left,omitzero"`
	// What names the wrong secret ("PIN" or "PUK") for ClassPINIncorrect.
	What string `json:"what,omitempty"`
}

// ClassPINIncorrect is the class of a *hwerr.PINIncorrect.
const ClassPINIncorrect = "pin_incorrect"

// classes maps the wire names of error classes to the hwerr sentinels.
var classes = map[string]error{
	"pin_blocked":   hwerr.ErrPINBlocked,
	"puk_blocked":   hwerr.ErrPUKBlocked,
	"pin_policy":    hwerr.ErrPINPolicy,
	"pin_required":  hwerr.ErrPINRequired,
	"removed":       hwerr.ErrRemoved,
	"unavailable":   hwerr.ErrUnavailable,
	"busy":          hwerr.ErrBusy,
	"not_found":     hwerr.ErrNotFound,
	"not_supported": hwerr.ErrNotSupported,
	"lockout":       hwerr.ErrLockout,
	"canceled":      hwerr.ErrCanceled,
	"timeout":       hwerr.ErrTimeout,
	"invalid_input": hwerr.ErrInvalidInput,
	"protocol":      hwerr.ErrProtocol,
}

// EncodeError turns err into its wire form, keeping its hwerr class.
// Errors of no class travel as "protocol".
func EncodeError(err error) *Error {
	var pi *hwerr.PINIncorrect
	if errors.As(err, &pi) {
		return &Error{Class: ClassPINIncorrect, Message: err.Error(), RetriesLeft: pi.RetriesLeft, What: pi.What}
	}
	for name, class := range classes {
		if errors.Is(err, class) {
			return &Error{Class: name, Message: err.Error()}
		}
	}
	return &Error{Class: "protocol", Message: err.Error()}
}

// Err returns the error the wire form describes, wrapping its hwerr class so
// that errors.Is and errors.As work on the daemon side.
func (e *Error) Err() error {
	if e.Class == ClassPINIncorrect {
		return &hwerr.PINIncorrect{What: e.What, RetriesLeft: e.RetriesLeft}
	}
	class, ok := classes[e.Class]
	if !ok {
		class = hwerr.ErrProtocol
	}
	return &classified{msg: e.Message, class: class}
}

// classified is an error from the helper with the message it gave and its
// hwerr class.
type classified struct {
	msg   string
	class error
}

func (c *classified) Error() string {
	if c.msg == "" {
		return fmt.Sprint(c.class)
	}
	return c.msg
}

func (c *classified) Unwrap() error { return c.class }
