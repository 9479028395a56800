package signin

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
)

// Authenticator is what sign-in needs to know of a present authenticator to
// word a blocked PIN and announce it: its id, kind and reader, and whether
// its PIN was listed as blocked before a try.
type Authenticator struct {
	ID, Reader string
	Kind       device.Kind
	Blocked    bool
}

// PINBlockedError says that the PIN of an authenticator is blocked. It
// wraps hwerr.ErrPINBlocked; the daemon words the advice for the person
// from Kind and SelfServiceUnblock (a card's PUK, or an administrator).
type PINBlockedError struct {
	Authenticator string
	Kind          device.Kind
	// SelfServiceUnblock is policy.self_service_unblock: the person may
	// unblock the PIN with the PUK.
	SelfServiceUnblock bool
}

func (e *PINBlockedError) Error() string {
	return fmt.Sprintf("the PIN of %s is blocked", e.Authenticator)
}

// Unwrap makes errors.Is(err, hwerr.ErrPINBlocked) true.
func (e *PINBlockedError) Unwrap() error { return hwerr.ErrPINBlocked }

// PINBlocks turns the outcome of each try that reached an authenticator
// into what the caller is told, and remembers which authenticators' PINs it
// announced as blocked, so that the announcement comes with the try that
// blocked the PIN and not again with every later refused try. An
// authenticator leaves the set when it is removed (Forget) or its PIN works
// again.
type PINBlocks struct {
	// SelfServiceUnblock is copied into each *PINBlockedError.
	SelfServiceUnblock bool
	// Announce, when set, is called once for the try that blocked a PIN.
	Announce func(a Authenticator)

	mu  sync.Mutex
	ids map[string]bool
}

// Outcome returns what the caller of a try on a (as listed before the try)
// gets for err. A blocked PIN, whether this try blocked it (the last try
// spent, or a security key answering "blocked") or it was blocked before,
// is a *PINBlockedError; the try that blocked it is announced (once). An
// authenticator that was already listed as blocked is not announced again.
// Other outcomes are returned unchanged.
func (b *PINBlocks) Outcome(err error, a Authenticator) error {
	if err == nil {
		b.Forget(a.ID)
		return nil
	}
	wrong, ok := errors.AsType[*hwerr.PINIncorrect](err)
	lastTry := ok && wrong.RetriesLeft.Exhausted() && wrong.What != SecretPUK
	if !lastTry && !errors.Is(err, hwerr.ErrPINBlocked) {
		return err
	}
	if b.mark(a.ID) && (lastTry || !a.Blocked) && b.Announce != nil {
		b.Announce(a)
	}
	return &PINBlockedError{Authenticator: a.ID, Kind: a.Kind, SelfServiceUnblock: b.SelfServiceUnblock}
}

// mark records id as blocked; it reports whether it was not yet.
func (b *PINBlocks) mark(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ids[id] {
		return false
	}
	if b.ids == nil {
		b.ids = map[string]bool{}
	}
	b.ids[id] = true
	return true
}

// Forget drops id from the authenticators announced as blocked (it was
// removed, unblocked, or its PIN was accepted).
func (b *PINBlocks) Forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.ids, id)
}
