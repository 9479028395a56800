package helper

import (
	"errors"
	"fmt"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/miekg/pkcs11"
)

// rvClasses maps PKCS#11 return values (PKCS#11 v2.40 §5.1) to hwerr
// classes. Values not listed are protocol errors.
var rvClasses = map[pkcs11.Error]error{
	pkcs11.CKR_PIN_LOCKED:                     hwerr.ErrPINBlocked,
	pkcs11.CKR_PIN_LEN_RANGE:                  hwerr.ErrPINPolicy,
	pkcs11.CKR_PIN_INVALID:                    hwerr.ErrPINPolicy,
	pkcs11.CKR_USER_NOT_LOGGED_IN:             hwerr.ErrPINRequired,
	pkcs11.CKR_USER_PIN_NOT_INITIALIZED:       hwerr.ErrPINRequired,
	pkcs11.CKR_DEVICE_REMOVED:                 hwerr.ErrRemoved,
	pkcs11.CKR_TOKEN_NOT_PRESENT:              hwerr.ErrRemoved,
	pkcs11.CKR_TOKEN_NOT_RECOGNIZED:           hwerr.ErrRemoved,
	pkcs11.CKR_SESSION_HANDLE_INVALID:         hwerr.ErrRemoved,
	pkcs11.CKR_SESSION_CLOSED:                 hwerr.ErrRemoved,
	pkcs11.CKR_SLOT_ID_INVALID:                hwerr.ErrRemoved,
	pkcs11.CKR_MECHANISM_INVALID:              hwerr.ErrNotSupported,
	pkcs11.CKR_MECHANISM_PARAM_INVALID:        hwerr.ErrNotSupported,
	pkcs11.CKR_FUNCTION_NOT_SUPPORTED:         hwerr.ErrNotSupported,
	pkcs11.CKR_KEY_TYPE_INCONSISTENT:          hwerr.ErrNotSupported,
	pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED:     hwerr.ErrNotSupported,
	pkcs11.CKR_TOKEN_WRITE_PROTECTED:          hwerr.ErrNotSupported,
	pkcs11.CKR_DATA_LEN_RANGE:                 hwerr.ErrInvalidInput,
	pkcs11.CKR_DATA_INVALID:                   hwerr.ErrInvalidInput,
	pkcs11.CKR_ARGUMENTS_BAD:                  hwerr.ErrInvalidInput,
	pkcs11.CKR_FUNCTION_CANCELED:              hwerr.ErrCanceled,
	pkcs11.CKR_OPERATION_ACTIVE:               hwerr.ErrBusy,
	pkcs11.CKR_SESSION_COUNT:                  hwerr.ErrBusy,
	pkcs11.CKR_USER_ANOTHER_ALREADY_LOGGED_IN: hwerr.ErrBusy,
	pkcs11.CKR_USER_TOO_MANY_TYPES:            hwerr.ErrBusy,
	pkcs11.CKR_DEVICE_ERROR:                   hwerr.ErrUnavailable,
	pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:       hwerr.ErrUnavailable,
	pkcs11.CKR_OBJECT_HANDLE_INVALID:          hwerr.ErrNotFound,
	pkcs11.CKR_KEY_HANDLE_INVALID:             hwerr.ErrNotFound,
	pkcs11.CKR_SIGNATURE_LEN_RANGE:            hwerr.ErrProtocol,
}

// classify wraps a PKCS#11 error from op in its hwerr class. CKR_PIN_INCORRECT
// is handled by pinError, which needs the token's flags.
func classify(op string, err error) error {
	var r pkcs11.Error
	if !errors.As(err, &r) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if class, ok := rvClasses[r]; ok {
		return fmt.Errorf("%s: %v: %w", op, r, class)
	}
	return fmt.Errorf("%s: %v: %w", op, r, hwerr.ErrProtocol)
}

// Token flags about the user PIN (PKCS#11 v2.40 §5.5, CK_TOKEN_INFO).
const (
	flagsPINFinalTry = pkcs11.CKF_USER_PIN_FINAL_TRY
	flagsPINLocked   = pkcs11.CKF_USER_PIN_LOCKED
	flagsSOFinalTry  = pkcs11.CKF_SO_PIN_FINAL_TRY
	flagsSOLocked    = pkcs11.CKF_SO_PIN_LOCKED
)

// pinError classifies the error of a C_Login or C_SetPIN for the secret
// what ("PIN" or "PUK"), reading the token flags the module set after the
// attempt: CKR_PIN_INCORRECT becomes *hwerr.PINIncorrect with 1 try left on
// the final-try flag, 0 when the attempt locked the PIN, unknown otherwise; a
// locked PIN or PUK becomes hwerr.ErrPINBlocked or hwerr.ErrPUKBlocked.
func pinError(op, what string, err error, flags uint) error {
	finalTry, locked := uint(flagsPINFinalTry), uint(flagsPINLocked)
	blocked := hwerr.ErrPINBlocked
	if what == "PUK" {
		finalTry, locked, blocked = flagsSOFinalTry, flagsSOLocked, hwerr.ErrPUKBlocked
	}
	switch {
	case errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)):
		var retries hwerr.Tries
		if flags&locked != 0 {
			retries = hwerr.TriesLeft(0)
		} else if flags&finalTry != 0 {
			retries = hwerr.TriesLeft(1)
		}
		return fmt.Errorf("%s: %w", op, &hwerr.PINIncorrect{What: what, RetriesLeft: retries})
	case errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_LOCKED)):
		return fmt.Errorf("%s: %w", op, blocked)
	}
	return classify(op, err)
}
