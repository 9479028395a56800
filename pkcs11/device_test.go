package pkcs11

import (
	"fmt"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
)

func TestPINStateFromFlags(t *testing.T) {
	for _, tc := range []struct {
		flags   uint
		blocked bool
		retries string
	}{
		{0, false, "nil"},
		{0x10000, false, "nil"}, // CKF_USER_PIN_COUNT_LOW says no number
		{ckfUserPINFinalTry, false, "1"},
		{ckfUserPINLocked, true, "0"},
	} {
		st := pinState(tc.flags)
		got := "nil"
		if n, ok := st.RetriesLeft.Left(); ok {
			got = fmt.Sprint(n)
		}
		if st.Blocked != tc.blocked || got != tc.retries {
			t.Errorf("flags %#x: %+v (retries %s), want blocked=%v retries %s", tc.flags, st, got, tc.blocked, tc.retries)
		}
	}
}

func TestNotePIN(t *testing.T) {
	d := &Device{}
	d.notePINLocked("login", &hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(1)})
	if d.pin.RetriesLeft != hwerr.TriesLeft(1) || d.pin.Blocked {
		t.Errorf("after a wrong PIN with 1 try left: %+v", d.pin)
	}
	d.notePINLocked("unblock", &hwerr.PINIncorrect{What: "PUK", RetriesLeft: hwerr.TriesLeft(0)})
	if d.pin.Blocked {
		t.Error("a wrong PUK marked the PIN blocked")
	}
	d.notePINLocked("login", fmt.Errorf("x: %w", hwerr.ErrPINBlocked))
	if !d.pin.Blocked {
		t.Error("ErrPINBlocked did not mark the PIN blocked")
	}
	d.notePINLocked("login", nil)
	if d.pin.Blocked || d.pin.RetriesLeft.Known() {
		t.Errorf("a good PIN did not clear the state: %+v", d.pin)
	}
}
