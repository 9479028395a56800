package pivbackend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc"
	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
)

// idleRelease is how long the connection to a card stays open after its last
// operation. Closing it lets pcscd power an unused card down (pcsc-lite does
// so some seconds after the last application disconnects), as it would
// without hwauthd; a burst of requests reuses one connection.
const idleRelease = 2 * time.Second

// Device is one PIV card in a reader, shared with the other applications
// that use the card through pcscd. It serializes its own operations and runs
// each inside a PC/SC transaction, so other applications cannot interleave
// APDUs. It connects on demand and lets go of the card when idle. A PIN it
// verifies never outlives the request that gave it, and it leaves a PIN
// status it did not create (another application's login) as it found it.
type Device struct {
	reader string
	// id is the authenticator id, set before the device is attached; the
	// backend reads and changes it under its own lock. base is the
	// GUID-based id, which id differs from while another card has it.
	id, base string

	connect func(context.Context, string) (cardConn, error)

	mu     sync.Mutex // held for every card operation; guards the fields below
	tx     connection
	client *piv.Client
	idle   *time.Timer // releases the connection after idleRelease
	used   time.Time   // when the last operation ended
	info   device.Info
	closed bool
	// keysCurrent is set while info.Keys are what the card holds as far as
	// can be known: read on the current connection since its last reset
	// (keys.go).
	keysCurrent bool
	// checked is the PIN status that selectLocked's empty VERIFY read in
	// the current transaction, nil when it had to SELECT instead.
	checked *piv.PINStatus
	// keysChanged is set during an operation whose refresh found other
	// certificates than the description held.
	keysChanged bool
}

var _ device.Device = (*Device)(nil)

// connection is the transmitter under the Device's piv.Client: the current
// PC/SC connection, nil while released.
type connection struct {
	card cardConn
}

// cardConn is what a Device uses of a PC/SC connection (*pcsc.Card).
type cardConn interface {
	Transmit(ctx context.Context, apdu []byte) ([]byte, error)
	Transaction(ctx context.Context, fn func() error) error
	Close() error
}

// connectPCSC opens a shared-mode PC/SC connection to the card in reader.
func connectPCSC(ctx context.Context, reader string) (cardConn, error) {
	return pcsc.Connect(ctx, reader)
}

// Transmit implements apdu.Transmitter.
func (c *connection) Transmit(ctx context.Context, b []byte) ([]byte, error) {
	if c.card == nil {
		return nil, fmt.Errorf("transmit: %w", pcsc.ErrClosed)
	}
	return c.card.Transmit(ctx, b)
}

// Open connects to the card in reader, selects the PIV application and reads
// what identifies it: CHUID, certificates and PIN state.
func Open(ctx context.Context, reader string) (*Device, error) {
	return open(ctx, reader, connectPCSC)
}

// open is Open with the connections made by connect.
func open(ctx context.Context, reader string, connect func(context.Context, string) (cardConn, error)) (*Device, error) {
	d := &Device{reader: reader, connect: connect}
	d.client = piv.NewClient(&d.tx)
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.transactLocked(ctx, func() error {
		if _, err := d.client.Select(ctx); err != nil {
			return fmt.Errorf("select PIV application: %w", err)
		}
		return d.readLocked(ctx, reader)
	})
	if err != nil {
		d.releaseLocked()
		return nil, err
	}
	d.armIdleLocked()
	d.id, d.base = d.info.ID, d.info.ID
	return d, nil
}

// readLocked reads the card's identity; d.mu need not be held during Open,
// as no one else knows d yet.
func (d *Device) readLocked(ctx context.Context, reader string) error {
	chuid, err := d.client.ReadCHUID(ctx)
	if err != nil {
		return fmt.Errorf("read CHUID: %w", err)
	}
	info := device.Info{
		ID:      idPrefix + hex.EncodeToString(chuid.GUID[:]),
		Kind:    device.KindSmartcard,
		Backend: device.BackendPIV,
		Reader:  reader,
		Serial:  chuid.Serial(),
	}
	keys, err := d.readKeysLocked(ctx)
	if err != nil {
		return err
	}
	// Before any PIN: is it the card it claims to be (cardauth.go)?
	if err := d.describeKeysLocked(ctx, &info, keys); err != nil {
		return err
	}
	d.info = info
	d.info.PIN, _ = d.pinStateLocked(ctx)
	return nil
}

// Info describes the card with the PIN state last seen.
func (d *Device) Info() device.Info {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.info
}

// Close drops the connection; later operations fail with hwerr.ErrRemoved.
func (d *Device) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.releaseLocked()
}

// PINState reads the retry counter the card reports, with an empty VERIFY
// that spends no try.
func (d *Device) PINState(ctx context.Context) (device.PINState, error) {
	var st device.PINState
	err := d.do(ctx, func() (err error) {
		st, err = d.pinStateLocked(ctx)
		return err
	})
	return st, err
}

// pinStateLocked reads the PIN state into d.info.
func (d *Device) pinStateLocked(ctx context.Context) (device.PINState, error) {
	st, err := d.pinStatusLocked(ctx)
	if err != nil {
		return d.info.PIN, err
	}
	d.info.PIN = device.PINState{RetriesLeft: st.RetriesLeft, Blocked: st.Blocked, Verified: st.Verified}
	return d.info.PIN, nil
}

// VerifyPIN checks pin on the card.
func (d *Device) VerifyPIN(ctx context.Context, pin []byte) error {
	return d.doWithPIN(ctx, func() error { return d.client.VerifyPIN(ctx, pin) })
}

// ChangePIN replaces the PIN (CHANGE REFERENCE DATA).
func (d *Device) ChangePIN(ctx context.Context, oldPIN, newPIN []byte) error {
	return d.doWithPIN(ctx, func() error { return d.client.ChangePIN(ctx, oldPIN, newPIN) })
}

// UnblockPIN resets the PIN's counter with the PUK (RESET RETRY COUNTER).
func (d *Device) UnblockPIN(ctx context.Context, puk, newPIN []byte) error {
	return d.doWithPIN(ctx, func() error { return d.client.UnblockPIN(ctx, puk, newPIN) })
}

// Sign verifies the PIN and signs with the slot's key (GENERAL
// AUTHENTICATE). A key that needs the PIN is never used without the PIN
// verified in this same request, even when another application left the card
// logged in: without one the answer is hwerr.ErrPINRequired.
func (d *Device) Sign(ctx context.Context, req device.SignRequest) ([]byte, error) {
	slot, err := piv.ParseSlot(strings.ToLower(req.Key))
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", req.Key, hwerr.ErrNotFound)
	}
	if slot.NeedsPIN() && len(req.PIN) == 0 {
		return nil, fmt.Errorf("key %s needs the PIN: %w", slot, hwerr.ErrPINRequired)
	}
	var sig []byte
	err = d.doWithPIN(ctx, func() error {
		key, ok := keyOf(d.info.Keys, slot)
		if !ok {
			return fmt.Errorf("no key in slot %s: %w", slot, hwerr.ErrNotFound)
		}
		if !req.Algorithm.Fits(key.Public) {
			return fmt.Errorf("%s with the %s key in slot %s: %w", req.Algorithm, key.Algorithm, slot, hwerr.ErrNotSupported)
		}
		if slot.NeedsPIN() {
			if err := d.client.VerifyPIN(ctx, req.PIN); err != nil {
				return err
			}
		}
		var err error
		sig, err = d.client.PrivateKey(slot, key.Public).SignContext(ctx, rand.Reader, req.Digest, req.Algorithm.SignerOpts())
		return err
	})
	return sig, err
}

// doWithPIN runs a PIN operation and refreshes the PIN state from its
// result. It drops the PIN's security status afterwards only when the card
// was not verified as the transaction began: another application's login
// (an OpenSC session, say) is left as it was.
func (d *Device) doWithPIN(ctx context.Context, fn func() error) error {
	return d.do(ctx, func() error {
		if d.keysChanged {
			return errKeysChanged
		}
		before, err := d.pinStatusLocked(ctx)
		if err != nil {
			return err
		}
		err = fn()
		d.notePINResult(err)
		if before.Verified {
			return err
		}
		// A reset reported by the logout already dropped the PIN status.
		lerr := d.client.Logout(ctx)
		if lerr != nil && err == nil && !errors.Is(lerr, hwerr.ErrNotSupported) && !errors.Is(lerr, pcsc.ErrCardReset) {
			err = fmt.Errorf("drop PIN status: %w", lerr)
		}
		return err
	})
}

// notePINResult updates the cached PIN state from a PIN operation's error.
func (d *Device) notePINResult(err error) {
	var wrong *hwerr.PINIncorrect
	switch {
	case errors.As(err, &wrong) && wrong.What != "PUK" && wrong.RetriesLeft.Known():
		d.info.PIN = device.PINStateOf(wrong.RetriesLeft)
	case errors.Is(err, hwerr.ErrPINBlocked):
		d.info.PIN = device.PINStateOf(hwerr.TriesLeft(0))
	}
}

// do runs fn with the device lock and a PC/SC transaction held, the PIV
// application selected and the description's keys current (keys.go).
func (d *Device) do(ctx context.Context, fn func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("card in %s: %w", d.reader, hwerr.ErrRemoved)
	}
	defer d.armIdleLocked()
	defer func() { d.checked, d.keysChanged = nil, false }()
	return d.transactLocked(ctx, func() error {
		if err := d.selectLocked(ctx); err != nil {
			return err
		}
		changed, err := d.refreshKeysLocked(ctx)
		if err != nil {
			return err
		}
		d.keysChanged = d.keysChanged || changed
		return fn()
	})
}

// resetAttempts is how many times one request starts over after other
// applications reset the card under it; past that it fails with
// hwerr.ErrBusy. Each attempt spends no PIN try (see transactLocked), so the
// bound only keeps a request from chasing a card that is reset without end.
const resetAttempts = 4

// transactLocked connects when needed and runs fn in a PC/SC transaction.
// When another application reset the card during fn (yubico-piv-tool
// disconnects with a reset), fn runs again from the start, SELECT and PIN
// included, in a new transaction: the reset spent no PIN try. Why that holds:
//
//   - pcsc-lite refuses a command on a handle whose card was reset since its
//     last command (SCARD_W_RESET_CARD, checked before the command goes to
//     the reader), and the reader's lock keeps a reset from cutting into an
//     exchange: the command that reports the reset never reached the card.
//   - Every PIN command before it was answered. A wrong PIN or PUK ends fn
//     with the card's answer at once (SP 800-73-4 part 2, 3.2.1: only a
//     failed VERIFY decrements the retry counter, answering 63CX), so a
//     request that spent a try is never repeated. A VERIFY answered 9000
//     spent none (success resets the counter); the reset only cleared the
//     security status it set (a reset returns the card to its initial
//     state: no application selected beyond the default, no PIN verified),
//     which the next attempt sets again with the same PIN.
//
// So one request spends at most one try however often it starts over. A PIN
// command whose answer is lost for another reason (the card pulled, a reader
// error mid-exchange) has an unknown outcome: it is never repeated, and the
// request fails with that error. fn must not run a command with a lasting
// effect (CHANGE REFERENCE DATA, RESET RETRY COUNTER) before another that may
// report a reset; doWithPIN's logout, the only command after them, treats a
// reset as done (the reset logged the card out).
func (d *Device) transactLocked(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		if d.tx.card == nil {
			card, err := d.connect(ctx, d.reader)
			if err != nil {
				return err
			}
			d.tx.card, d.keysCurrent = card, false
		}
		err := d.tx.card.Transaction(ctx, fn)
		if errors.Is(err, hwerr.ErrRemoved) || errors.Is(err, hwerr.ErrUnavailable) || errors.Is(err, pcsc.ErrClosed) {
			d.releaseLocked() // the next operation connects afresh
		}
		if errors.Is(err, pcsc.ErrCardReset) {
			d.keysCurrent = false // another application had the card
		}
		switch {
		case !errors.Is(err, pcsc.ErrCardReset):
			return err
		case attempt < resetAttempts:
			continue
		default:
			return fmt.Errorf("other applications reset the card %d times during the request; try again: %w", attempt, hwerr.ErrBusy)
		}
	}
}

// selectLocked makes sure the PIV application is the current one: another
// application may have selected one of its own since. An empty VERIFY that
// answers as the PIV application does costs no try; otherwise SELECT.
func (d *Device) selectLocked(ctx context.Context) error {
	d.checked = nil
	st, err := d.client.PINStatus(ctx)
	if err == nil {
		d.checked = &st
		return nil
	}
	var se apdu.StatusError
	if !errors.As(err, &se) {
		return err
	}
	if _, err := d.client.Select(ctx); err != nil {
		return fmt.Errorf("select PIV application: %w", err)
	}
	return nil
}

// pinStatusLocked returns the PIN status as the transaction began: the one
// selectLocked read with its empty VERIFY (nothing reached the card since),
// else a fresh one.
func (d *Device) pinStatusLocked(ctx context.Context) (piv.PINStatus, error) {
	if d.checked != nil {
		return *d.checked, nil
	}
	return d.client.PINStatus(ctx)
}

// armIdleLocked notes the end of an operation and (re)starts the timer that
// releases the connection.
func (d *Device) armIdleLocked() {
	d.used = time.Now()
	if d.idle == nil {
		d.idle = time.AfterFunc(idleRelease, d.releaseIdle)
		return
	}
	d.idle.Reset(idleRelease)
}

// releaseIdle closes the connection of a device that has been idle for
// idleRelease; an operation that ended since has re-armed the timer.
func (d *Device) releaseIdle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.used) >= idleRelease {
		d.releaseLocked()
	}
}

func (d *Device) releaseLocked() {
	if d.idle != nil {
		d.idle.Stop()
	}
	if d.tx.card != nil {
		d.tx.card.Close()
		d.tx.card = nil
	}
}
