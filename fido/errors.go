package fido

import (
	"errors"
	"fmt"
	"strings"

	libfido2 "github.com/keys-pub/go-libfido2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// libfido2 codes that go-libfido2 does not name (fido/err.h, CTAP 2.1 §8.2).
const (
	fidoErrUnsupportedAlgorithm = 0x26
	fidoErrUserActionTimeout    = 0x2f
	fidoErrPINBlocked           = 0x32
	fidoErrPINAuthInvalid       = 0x33
)

// errPINIncorrect marks a wrong PIN until the caller adds the retry count.
var errPINIncorrect = errors.New("wrong PIN")

// mapError turns a go-libfido2 error into an hwerr class (the libfido2 text
// is kept for the logs; it never contains a PIN).
func mapError(err error) error {
	var code libfido2.Error
	switch {
	case errors.Is(err, libfido2.ErrPinInvalid):
		return errPINIncorrect
	case errors.As(err, &code) && code.Code == fidoErrPINBlocked:
		return hwerr.ErrPINBlocked
	case errors.Is(err, libfido2.ErrPinAuthBlocked):
		return fmt.Errorf("%w: too many wrong PINs, remove and re-insert the key", hwerr.ErrLockout)
	case errors.Is(err, libfido2.ErrPinPolicyViolation):
		return hwerr.ErrPINPolicy
	case errors.Is(err, libfido2.ErrPinRequired):
		return hwerr.ErrPINRequired
	case errors.Is(err, libfido2.ErrPinNotSet):
		return fmt.Errorf("%w: the key has no PIN set", hwerr.ErrInvalidInput)
	case errors.Is(err, libfido2.ErrActionTimeout), errors.As(err, &code) && code.Code == fidoErrUserActionTimeout:
		return hwerr.ErrTimeout
	case errors.Is(err, libfido2.ErrKeepaliveCancel), errors.Is(err, libfido2.ErrOperationDenied):
		return hwerr.ErrCanceled
	case errors.Is(err, libfido2.ErrTX), errors.Is(err, libfido2.ErrRX), isOpenFailure(err):
		return fmt.Errorf("%w: %v", hwerr.ErrRemoved, err)
	case errors.Is(err, libfido2.ErrNoCredentials), errors.Is(err, libfido2.ErrInvalidCredential):
		return hwerr.ErrNotFound
	case errors.Is(err, libfido2.ErrUnsupportedOption), errors.Is(err, libfido2.ErrInvalidOption),
		errors.Is(err, libfido2.ErrInvalidCommand), errors.As(err, &code) && code.Code == fidoErrUnsupportedAlgorithm:
		return fmt.Errorf("%w: %v", hwerr.ErrNotSupported, err)
	case errors.Is(err, libfido2.ErrNotAllowed), errors.Is(err, libfido2.ErrInvalidArgument),
		errors.Is(err, libfido2.ErrInvalidLength), errors.Is(err, libfido2.ErrMissingParameter):
		return fmt.Errorf("%w: %v", hwerr.ErrInvalidInput, err)
	}
	return fmt.Errorf("%w: %v", hwerr.ErrProtocol, err)
}

// isOpenFailure reports a failure to open the device node, which for a key
// listed a moment ago means it was unplugged. go-libfido2 only marks it in
// the message ("failed to open: ...").
func isOpenFailure(err error) bool {
	return strings.HasPrefix(err.Error(), "failed to open")
}
