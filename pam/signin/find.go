package signin

import (
	"context"
	"errors"
	"fmt"

	"github.com/hwauthd/hwauthd/ipc"
)

// msgInsert asks the person for their card or key during the short wait.
const msgInsert = "Insert your smart card or security key…"

// msgInsertOrEnter is the prompt after the wait: the card, or the password.
const msgInsertOrEnter = "Insert your card and press Enter, or press Enter for your password: "

// choice is a present authenticator registered to the user, with the label
// the PIN prompt shows.
type choice struct {
	ipc.Authenticator
	label string
}

// pick returns the present authenticator registered to the user that
// sign-in offers first: the one they signed in with last (remembered
// sign-in information), else the default registration, else the first in
// the order of the registrations.
func pick(present []ipc.Authenticator, regs *ipc.RegistrationsResponse) (choice, bool) {
	byID := make(map[string]ipc.Authenticator, len(present))
	for _, a := range present {
		byID[a.ID] = a
	}
	rank := func(r ipc.Registration) int {
		switch {
		case regs.LastAuthenticator != "" && r.Authenticator == regs.LastAuthenticator:
			return 0
		case r.Default:
			return 1
		}
		return 2
	}
	var found *choice
	best := 3
	for _, r := range regs.Registrations {
		a, ok := byID[r.Authenticator]
		if !ok || rank(r) >= best {
			continue
		}
		best = rank(r)
		found = &choice{Authenticator: a, label: firstNonEmpty(r.Label, a.Label, a.ID)}
	}
	if found == nil {
		return choice{}, false
	}
	return *found, true
}

// foreign returns a present card or key that is not registered to the user
// and that a person inserts (a smart card or a security key, not a virtual
// smart card, which is always there).
func foreign(present []ipc.Authenticator, regs []ipc.Registration) (ipc.Authenticator, bool) {
	for _, a := range present {
		if a.Kind == ipc.KindVirtualSmartcard || registered(a.ID, regs) {
			continue
		}
		return a, true
	}
	return ipc.Authenticator{}, false
}

func registered(id string, regs []ipc.Registration) bool {
	for _, r := range regs {
		if r.Authenticator == id {
			return true
		}
	}
	return false
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// findAuthenticator returns the user's present authenticator. When none is
// present it fails at once if another card or key is inserted (it is not
// the user's), or asks for one and waits for it. ok is false when it gives
// up; out then says why.
func (m *Module) findAuthenticator(ctx context.Context, user string, regs *ipc.RegistrationsResponse) (c choice, out Outcome, ok bool) {
	rctx, cancel := context.WithTimeout(ctx, m.Opts.RequestTimeout)
	present, err := m.Client.Authenticators(rctx)
	cancel()
	if err != nil {
		return choice{}, m.failure(err, user), false
	}
	if c, out, ok, decided := m.settle(user, present, regs); decided {
		return c, out, ok
	}
	if m.Opts.InsertTimeout > 0 {
		c, out, ok := m.waitForInsertion(ctx, user, regs)
		if ok || out.Reason != reasonWaited {
			return c, out, ok
		}
	}
	return m.askForCard(ctx, user, regs)
}

// reasonWaited is the outcome's reason when the short wait for insertion
// ended without a card.
const reasonWaited = "no card inserted during the wait"

// askForCard settles what the short wait did not, and never strands the
// person: they insert the card and press Enter, or press Enter alone to
// use their password (the next module of the stack). An application that
// cannot ask goes on to the next method too. Whatever is typed at this
// prompt is dropped: it is shown, so it must never be a PIN.
func (m *Module) askForCard(ctx context.Context, user string, regs *ipc.RegistrationsResponse) (choice, Outcome, bool) {
	answer, err := m.Conv.PromptEcho(msgInsertOrEnter)
	clear(answer)
	if err != nil {
		return choice{}, Outcome{Result: AuthInfoUnavail, Reason: "no card, and the application cannot ask: " + err.Error()}, false
	}
	rctx, cancel := context.WithTimeout(ctx, m.Opts.RequestTimeout)
	present, err := m.Client.Authenticators(rctx)
	cancel()
	if err != nil {
		return choice{}, m.failure(err, user), false
	}
	if c, out, ok, decided := m.settle(user, present, regs); decided {
		return c, out, ok
	}
	return choice{}, Outcome{Result: AuthInfoUnavail, Reason: "no card: the password was chosen"}, false
}

// settle decides on the present authenticators: one of the user's (ok), or
// another person's card or key (refused); decided is false when neither is
// there yet.
func (m *Module) settle(user string, present []ipc.Authenticator, regs *ipc.RegistrationsResponse) (c choice, out Outcome, ok, decided bool) {
	if c, ok := pick(present, regs); ok {
		return c, Outcome{}, true, true
	}
	if a, ok := foreign(present, regs.Registrations); ok {
		return choice{}, m.notTheirs(user, a), false, true
	}
	return choice{}, Outcome{}, false, false
}

// notTheirs fails because the present authenticator a is not registered to
// the user.
func (m *Module) notTheirs(user string, a ipc.Authenticator) Outcome {
	m.debug("authenticator " + a.ID + " is not registered to " + user)
	m.say(m.Conv.Error, notRegistered(user))
	return Outcome{Result: AuthErr, Authenticator: a.ID, Reason: string(ipc.CodeNotRegistered)}
}

// waitForInsertion asks for the card or key and waits, on the event stream
// and never by polling, for one of the user's to appear, for the short
// Opts.InsertTimeout. The stream's snapshot is skipped: the present
// authenticators are listed again once it is done (something may have come
// between the first listing and the subscription) and after each live
// card-inserted or key-attached event.
func (m *Module) waitForInsertion(ctx context.Context, user string, regs *ipc.RegistrationsResponse) (choice, Outcome, bool) {
	m.say(m.Conv.Info, msgInsert)
	wctx, cancel := context.WithTimeout(ctx, m.Opts.InsertTimeout)
	defer cancel()
	stream, err := m.Client.Events(wctx, 0)
	if err != nil {
		return choice{}, m.waitFailure(wctx, err, user), false
	}
	defer stream.Close()
	for {
		ev, err := stream.Next()
		if err != nil {
			return choice{}, m.waitFailure(wctx, err, user), false
		}
		if ev.Type != ipc.EventSnapshotDone && (ev.Seq == 0 || (ev.Type != ipc.EventCardInserted && ev.Type != ipc.EventKeyAttached)) {
			continue
		}
		m.debug(fmt.Sprintf("event %s %s", ev.Type, ev.Authenticator))
		present, err := m.Client.Authenticators(wctx)
		if err != nil {
			return choice{}, m.waitFailure(wctx, err, user), false
		}
		if c, out, ok, decided := m.settle(user, present, regs); decided {
			return c, out, ok
		}
	}
}

// waitFailure is the outcome of a wait that ended with err: the end of the
// wait (reasonWaited, nothing shown: askForCard follows), or trouble with
// the daemon.
func (m *Module) waitFailure(wctx context.Context, err error, user string) Outcome {
	if errors.Is(wctx.Err(), context.DeadlineExceeded) {
		return Outcome{Result: AuthInfoUnavail, Reason: reasonWaited}
	}
	return m.failure(err, user)
}
