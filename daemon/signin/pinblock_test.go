package signin

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
)

// TestPINBlocks: the try that blocks a PIN (the last try spent, or a key
// answering blocked to a PIN it had not refused before) is a
// *PINBlockedError (errors.Is hwerr.ErrPINBlocked) and is announced once;
// later tries are refused as blocked without an announcement; a success
// forgets the block, so the next one is announced again.
func TestPINBlocks(t *testing.T) {
	var announced []string
	b := &PINBlocks{SelfServiceUnblock: true, Announce: func(a Authenticator) { announced = append(announced, a.ID+"@"+a.Reader) }}
	card := Authenticator{ID: "piv-1", Kind: "smartcard", Reader: "r0"}
	key := Authenticator{ID: "fido-1", Kind: "security-key"}
	takeAnnounced := func() []string {
		out := announced
		announced = nil
		return out
	}
	blocked := func(err error, a Authenticator) {
		t.Helper()
		e, ok := errors.AsType[*PINBlockedError](err)
		if !ok || !errors.Is(err, hwerr.ErrPINBlocked) || e.Authenticator != a.ID || e.Kind != a.Kind || !e.SelfServiceUnblock {
			t.Fatalf("want a PIN-blocked error for %s, got %#v", a.ID, err)
		}
		if e.Error() != "the PIN of "+a.ID+" is blocked" {
			t.Errorf("message %q", e.Error())
		}
	}

	wrong := &hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(1)}
	if err := b.Outcome(wrong, card); err != wrong {
		t.Fatalf("a wrong PIN with tries left: %v", err)
	}
	blocked(b.Outcome(fmt.Errorf("verify: %w", &hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(0)}), card), card)
	if got := takeAnnounced(); len(got) != 1 || got[0] != "piv-1@r0" {
		t.Fatalf("last try: announced %q", got)
	}
	blocked(b.Outcome(fmt.Errorf("verify: %w", hwerr.ErrPINBlocked), card), card)
	if got := takeAnnounced(); len(got) != 0 {
		t.Fatalf("announced twice: %q", got)
	}
	// A security key answers "blocked" to the try that blocks it.
	blocked(b.Outcome(hwerr.ErrPINBlocked, key), key)
	if got := takeAnnounced(); len(got) != 1 || got[0] != "fido-1@" {
		t.Fatalf("security key: announced %q", got)
	}
	// A wrong PUK that blocks the PUK is not a blocked PIN.
	puk := &hwerr.PINIncorrect{What: "PUK", RetriesLeft: hwerr.TriesLeft(0)}
	if err := b.Outcome(puk, card); err != puk {
		t.Fatalf("PUK: %v", err)
	}
	// Once the PIN works again the next block is announced again; removal
	// (Forget) does the same.
	if b.Outcome(nil, card) != nil {
		t.Fatal("a success must stay a success")
	}
	blocked(b.Outcome(&hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(0)}, card), card)
	b.Forget(key.ID)
	blocked(b.Outcome(hwerr.ErrPINBlocked, key), key)
	if got := takeAnnounced(); len(got) != 2 {
		t.Fatalf("blocked again after unblocking and after removal: announced %q", got)
	}
	// An authenticator that was listed as blocked when it came is not
	// announced.
	old := Authenticator{ID: "piv-2", Kind: "smartcard", Blocked: true}
	blocked(b.Outcome(hwerr.ErrPINBlocked, old), old)
	if got := takeAnnounced(); len(got) != 0 {
		t.Fatalf("blocked before insertion announced: %q", got)
	}
	// Without Announce nothing is called, the answer is the same.
	quiet := &PINBlocks{}
	if e, ok := errors.AsType[*PINBlockedError](quiet.Outcome(hwerr.ErrPINBlocked, card)); !ok || e.SelfServiceUnblock {
		t.Fatalf("quiet: %#v", e)
	}
}
