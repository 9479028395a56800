package helper

import (
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/miekg/pkcs11"
)

func TestPINError(t *testing.T) {
	incorrect := pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)
	for _, tc := range []struct {
		name    string
		what    string
		err     error
		flags   uint
		retries int   // for *hwerr.PINIncorrect
		class   error // otherwise
	}{
		{"wrong PIN, no count", "PIN", incorrect, 0, -1, nil},
		{"wrong PIN, count low", "PIN", incorrect, pkcs11.CKF_USER_PIN_COUNT_LOW, -1, nil},
		{"wrong PIN, final try", "PIN", incorrect, pkcs11.CKF_USER_PIN_FINAL_TRY, 1, nil},
		{"wrong PIN, now locked", "PIN", incorrect, pkcs11.CKF_USER_PIN_LOCKED, 0, nil},
		{"wrong PUK, final try", "PUK", incorrect, pkcs11.CKF_SO_PIN_FINAL_TRY, 1, nil},
		{"wrong PUK ignores user flags", "PUK", incorrect, pkcs11.CKF_USER_PIN_LOCKED, -1, nil},
		{"PIN locked", "PIN", pkcs11.Error(pkcs11.CKR_PIN_LOCKED), 0, 0, hwerr.ErrPINBlocked},
		{"PUK locked", "PUK", pkcs11.Error(pkcs11.CKR_PIN_LOCKED), 0, 0, hwerr.ErrPUKBlocked},
		{"PIN too short", "PIN", pkcs11.Error(pkcs11.CKR_PIN_LEN_RANGE), 0, 0, hwerr.ErrPINPolicy},
		{"card pulled", "PIN", pkcs11.Error(pkcs11.CKR_DEVICE_REMOVED), 0, 0, hwerr.ErrRemoved},
		{"not logged in", "PIN", pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN), 0, 0, hwerr.ErrPINRequired},
		{"odd code", "PIN", pkcs11.Error(pkcs11.CKR_VENDOR_DEFINED), 0, 0, hwerr.ErrProtocol},
	} {
		err := pinError("C_Login", tc.what, tc.err, tc.flags)
		if tc.class != nil {
			if !errors.Is(err, tc.class) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.class)
			}
			continue
		}
		var pi *hwerr.PINIncorrect
		if !errors.As(err, &pi) || pi.RetriesLeft != hwerr.TriesLeft(tc.retries) || pi.What != tc.what {
			t.Errorf("%s: %v, want PINIncorrect{%s, %d}", tc.name, err, tc.what, tc.retries)
		}
	}
}
