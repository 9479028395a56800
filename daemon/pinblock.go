package daemon

import (
	"errors"
	"sync"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
)

// blockedPINs remembers which authenticators' PINs hwauthd has announced as
// blocked, so that pin-blocked is sent for the try that blocked the PIN and
// not again for every later refused try. An authenticator leaves the set
// when it is removed or its PIN works again.
type blockedPINs struct {
	mu  sync.Mutex
	ids map[string]bool
}

// mark records id as blocked; it reports whether it was not yet.
func (b *blockedPINs) mark(id string) bool {
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

// unmark forgets id (removed, unblocked, or its PIN was accepted).
func (b *blockedPINs) unmark(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.ids, id)
}

// pinOutcome turns the result of an operation that took a PIN on a into
// what the caller is told. A blocked PIN, whether this try blocked it (the
// last try spent, or a security key answering "blocked" to it) or it was
// blocked before, answers pin_blocked with advice for the person; the try
// that blocked it also announces pin-blocked (once). A card that already
// showed as blocked when it was listed is not announced again.
func (d *Daemon) pinOutcome(err error, a ipc.Authenticator) error {
	if err == nil {
		d.blocked.unmark(a.ID)
		return nil
	}
	var wrong *hwerr.PINIncorrect
	lastTry := errors.As(err, &wrong) && wrong.RetriesLeft == 0 && wrong.What != "PUK"
	if !lastTry && !errors.Is(err, hwerr.ErrPINBlocked) {
		return err
	}
	if d.blocked.mark(a.ID) && (lastTry || !a.PIN.Blocked) {
		d.log.Info("PIN blocked", "authenticator", a.ID, "reader", a.Reader)
		d.manager.Publish(ipc.Event{Type: ipc.EventPINBlocked, Authenticator: a.ID, Reader: a.Reader})
	}
	return d.pinBlocked(a)
}

// pinBlocked is the pin_blocked answer for a, whose advice names what the
// person can do (ipc.PINBlockedAdvice).
func (d *Daemon) pinBlocked(a ipc.Authenticator) error {
	how, msg := ipc.PINBlockedAdvice(a, d.cfg.Policy.SelfServiceUnblock)
	return &ipc.Error{Code: ipc.CodePINBlocked, Message: msg, Details: map[string]any{"unblock": how}}
}
