// Package hwerr holds the error classes that every hardware backend (PC/SC and
// PIV, PKCS#11, TPM, FIDO2) wraps its failures in, so that the daemon can map
// them to the stable API codes in one place without knowing each backend's own
// error types.
//
// Backends decode status words, TPM response codes and CTAP codes at their
// lowest layer and wrap them: fmt.Errorf("verify pin: %w", hwerr.ErrPINBlocked)
// or return a *PINIncorrect. Messages never contain a PIN, PUK or key.
package hwerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Error classes. Test with errors.Is.
var (
	// ErrPINBlocked means the PIN (or user verification) is blocked on the
	// authenticator; it must be unblocked with the PUK or by an administrator.
	ErrPINBlocked = errors.New("PIN is blocked")
	// ErrPUKBlocked means the PUK is blocked too; the card must be reset or
	// replaced.
	ErrPUKBlocked = errors.New("PUK is blocked")
	// ErrPINPolicy means a new PIN or PUK does not meet the authenticator's
	// rules (too short, too long, wrong characters).
	ErrPINPolicy = errors.New("PIN does not meet the policy")
	// ErrPINRequired means the operation needs a verified PIN and none was
	// given or the security status was lost.
	ErrPINRequired = errors.New("PIN verification required")
	// ErrRemoved means the authenticator was removed (card pulled, key
	// unplugged, virtual card deleted) before or during the operation.
	ErrRemoved = errors.New("authenticator removed")
	// ErrUnavailable means the backend service or device is not reachable
	// (pcscd stopped, no TPM, module helper down).
	ErrUnavailable = errors.New("backend unavailable")
	// ErrBusy means the authenticator is in use by another operation or
	// process and the wait was given up.
	ErrBusy = errors.New("authenticator busy")
	// ErrNotFound means the named key, slot, object or device does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNotSupported means the authenticator cannot do what was asked
	// (algorithm, operation).
	ErrNotSupported = errors.New("not supported by the authenticator")
	// ErrWrongDevice means a key blob belongs to another device's TPM.
	ErrWrongDevice = errors.New("belongs to another device")
	// ErrLockout means the device as a whole refuses authorisation for now
	// (TPM dictionary-attack lockout, FIDO2 PIN auth blocked until power
	// cycle).
	ErrLockout = errors.New("device is locked out")
	// ErrLimit means a per-device limit was reached (virtual cards per TPM).
	ErrLimit = errors.New("device limit reached")
	// ErrDeviceFull: the device has no room left for another object (a
	// TPM's NV or persistent memory); only freeing space on the device helps.
	ErrDeviceFull = errors.New("device storage full")
	// ErrCanceled means the person or the client cancelled (touch not given,
	// request ended).
	ErrCanceled = errors.New("operation cancelled")
	// ErrTimeout means the authenticator waited too long for the person
	// (touch, insertion).
	ErrTimeout = errors.New("timed out waiting for the person")
	// ErrInvalidInput means the authenticator rejected the request's data
	// (malformed digest, wrong length).
	ErrInvalidInput = errors.New("invalid input for the authenticator")
	// ErrProtocol means the authenticator answered something the protocol does
	// not allow (malformed TLV, unexpected status word).
	ErrProtocol = errors.New("unexpected answer from the authenticator")
)

// PINIncorrect is returned when a PIN (or PUK) was wrong, with the tries
// the authenticator reports as remaining (unknown when it does not say).
type PINIncorrect struct {
	// What names the secret: "PIN" or "PUK".
	What        string
	RetriesLeft Tries
}

func (e *PINIncorrect) Error() string {
	what := e.What
	if what == "" {
		what = "PIN"
	}
	switch n, ok := e.RetriesLeft.Left(); {
	case !ok:
		return fmt.Sprintf("wrong %s", what)
	case n == 1:
		return fmt.Sprintf("wrong %s, 1 try left", what)
	default:
		return fmt.Sprintf("wrong %s, %d tries left", what, n)
	}
}

// Tries is what an authenticator tells of a PIN's or PUK's retry counter:
// how many wrong tries it still accepts, or, in its zero value, nothing
// (PKCS#11 tokens and some cards do not say without a verification
// attempt). It is the one form of the counter from the card's status word
// to the API's "retries_left", where an unknown count is null.
type Tries struct {
	left  int
	known bool
}

// TriesLeft is a counter that says n tries are left; a negative n is a
// count the authenticator did not give.
func TriesLeft(n int) Tries {
	if n < 0 {
		return Tries{}
	}
	return Tries{left: n, known: true}
}

// Left returns the number of tries left and whether the authenticator said.
func (t Tries) Left() (n int, ok bool) { return t.left, t.known }

// Known reports whether the authenticator said how many tries are left.
func (t Tries) Known() bool { return t.known }

// Exhausted reports whether the authenticator said no try is left.
func (t Tries) Exhausted() bool { return t.known && t.left == 0 }

// String is the count, or "unknown".
func (t Tries) String() string {
	if !t.known {
		return "unknown"
	}
	return strconv.Itoa(t.left)
}

// MarshalJSON encodes the count as a number, an unknown one as null.
func (t Tries) MarshalJSON() ([]byte, error) {
	if !t.known {
		return []byte("null"), nil
	}
	return strconv.AppendInt(nil, int64(t.left), 10), nil
}

// UnmarshalJSON decodes a number, or null (or a negative number) for an
// unknown count.
func (t *Tries) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Tries{}
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("retries left: %w", err)
	}
	*t = TriesLeft(n)
	return nil
}
