package pcsc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ebfe/scard"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Card is a shared-mode connection to the card in one reader, with its own
// PC/SC context (an SCARDCONTEXT must not be shared across goroutines). Its
// methods may be called from any goroutine; calls on the handle are
// serialized.
//
// PC/SC has no way to cancel SCardTransmit: Transmit returns when the card
// answers or is pulled, whatever its ctx says. Transaction's wait for another
// application's transaction does honour ctx.
type Card struct {
	reader string
	// mu orders Close against the release of sem; see unlock.
	mu sync.Mutex
	// sem guards the fields below and every C call on handle; it is a channel
	// so that waiting for it can end with a ctx.
	sem    chan struct{}
	sctx   *scard.Context
	handle *scard.Card
	atr    []byte // guarded by mu
	// txBegin and txBegun reach the transaction goroutine (nil until the
	// first transaction); guarded by sem.
	txBegin chan struct{}
	txBegun chan error
	// rbuf receives every response (SCardTransmit) and is cleared after
	// each; guarded by sem.
	rbuf   []byte
	closed bool // Close was called; guarded by mu, and the holder of sem releases
	gone   bool // handle and sctx are released
}

// Connect opens a shared-mode connection (T=0 or T=1) to the card in reader.
// It fails with hwerr.ErrRemoved when the reader has no card or does not
// exist, hwerr.ErrUnavailable when pcscd is not running and hwerr.ErrBusy
// when another application holds the card exclusively.
func Connect(ctx context.Context, reader string) (*Card, error) {
	if err := ctxErr(ctx, "connect"); err != nil {
		return nil, err
	}
	sctx, err := scard.EstablishContext()
	if err != nil {
		return nil, wrapErr("connect: establish context", err)
	}
	h, err := sctx.Connect(reader, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		_ = sctx.Release()
		return nil, wrapErr(fmt.Sprintf("connect to %q", reader), err)
	}
	c := &Card{reader: reader, sem: make(chan struct{}, 1), sctx: sctx, handle: h, rbuf: make([]byte, receiveBufferSize)}
	if err := c.readATRLocked(); err != nil {
		c.releaseHandleLocked()
		return nil, err
	}
	return c, nil
}

// Reader returns the name of the reader the card is in.
func (c *Card) Reader() string { return c.reader }

// ATR returns the card's answer to reset, as read at Connect or the last Reset.
func (c *Card) ATR() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.atr)
}

// Transmit sends one raw command APDU and returns the response APDU with its
// status word. The card's answer is not interpreted here. It cannot be
// cancelled once sent (see Card); it fails with hwerr.ErrRemoved when the card
// is pulled meanwhile and with ErrCardReset when another application reset it.
func (c *Card) Transmit(ctx context.Context, apdu []byte) ([]byte, error) {
	if err := c.lock(ctx, "transmit"); err != nil {
		return nil, err
	}
	defer c.unlock()
	if len(apdu) == 0 {
		return nil, fmt.Errorf("transmit: %w: empty command", hwerr.ErrInvalidInput)
	}
	n, err := transmitInto(c.handle, apdu, c.rbuf)
	if err != nil {
		return nil, c.failureLocked("transmit", err)
	}
	// The response leaves in a buffer of its own size; the shared one keeps
	// nothing of it.
	resp := bytes.Clone(c.rbuf[:n])
	clear(c.rbuf[:n])
	if len(resp) < 2 {
		// vpcd answers "success, no bytes" when the card's connection drops
		// mid-command; no card answers without a status word.
		if c.cardGoneLocked() {
			return nil, fmt.Errorf("transmit: %w (empty response)", hwerr.ErrRemoved)
		}
		return nil, fmt.Errorf("transmit: %w: response of %d bytes has no status word", hwerr.ErrProtocol, len(resp))
	}
	return resp, nil
}

// Transaction runs fn inside a PC/SC transaction (SCardBeginTransaction), so
// that no other application's commands interleave with fn's; the transaction
// ends with SCARD_LEAVE_CARD. Waiting for another application's transaction
// ends with hwerr.ErrBusy when ctx ends first. fn uses the Card's own methods;
// the transaction ends even if fn panics. A reset that pcsc-lite reports only
// as the transaction ends came after fn's last command was answered: it does
// not fail fn's result (the next command starts from the reset card).
func (c *Card) Transaction(ctx context.Context, fn func() error) (err error) {
	if err := c.beginTransaction(ctx); err != nil {
		return err
	}
	defer func() {
		if endErr := c.endTransaction(); endErr != nil && err == nil && !errors.Is(endErr, ErrCardReset) {
			err = endErr
		}
	}()
	return fn()
}

// beginTransaction calls SCardBeginTransaction, which pcsc-lite keeps
// retrying while another handle holds the card and which no PC/SC call
// interrupts. The call runs on the card's transaction goroutine (started by
// the first transaction, ended by Close), so that the caller can give up
// when ctx ends; the goroutine is reused, so an uncontended transaction
// starts none and allocates nothing. When ctx ends first, a goroutine waits
// for the call, keeping the handle until the wait is over, and ends the
// transaction it got.
func (c *Card) beginTransaction(ctx context.Context) error {
	if err := c.lock(ctx, "begin transaction"); err != nil {
		return err
	}
	if c.txBegin == nil {
		c.txBegin, c.txBegun = make(chan struct{}), make(chan error, 1)
		go c.transactions(c.txBegin, c.txBegun)
	}
	c.txBegin <- struct{}{}
	select {
	case err := <-c.txBegun:
		if err != nil {
			err = c.failureLocked("begin transaction", err)
		}
		c.unlock()
		return err
	case <-ctx.Done():
		go func() {
			if err := <-c.txBegun; err == nil {
				_ = c.handle.EndTransaction(scard.LeaveCard)
			}
			c.unlock()
		}()
		return fmt.Errorf("begin transaction: %w (%w)", hwerr.ErrBusy, ctx.Err())
	}
}

// transactions is the card's transaction goroutine: it begins a transaction
// for every request on begin and answers on begun, until begin is closed.
func (c *Card) transactions(begin <-chan struct{}, begun chan<- error) {
	for range begin {
		begun <- c.handle.BeginTransaction()
	}
}

func (c *Card) endTransaction() error {
	c.sem <- struct{}{}
	defer c.unlock()
	if c.gone {
		return fmt.Errorf("end transaction: %w", ErrClosed)
	}
	err := c.handle.EndTransaction(scard.LeaveCard)
	if errors.Is(err, scard.ErrResetCard) {
		// pcsc-lite refused to end it until the reset is acknowledged;
		// the transaction is still held until it does end.
		err = c.failureLocked("end transaction", err)
		if rerr := c.handle.EndTransaction(scard.LeaveCard); rerr != nil {
			return c.failureLocked("end transaction", rerr)
		}
		return err
	}
	if err != nil {
		return c.failureLocked("end transaction", err)
	}
	return nil
}

// Reset resets the card (SCardReconnect with SCARD_RESET_CARD): it drops the
// card's security status, so a verified PIN must be verified again.
func (c *Card) Reset(ctx context.Context) error {
	if err := c.lock(ctx, "reset"); err != nil {
		return err
	}
	defer c.unlock()
	if err := c.handle.Reconnect(scard.ShareShared, scard.ProtocolAny, scard.ResetCard); err != nil {
		return c.failureLocked("reset", err)
	}
	return c.readATRLocked()
}

// Close disconnects (SCARD_LEAVE_CARD) and releases the connection's context.
// If a Transmit is in flight on another goroutine, Close returns at once and
// the connection is released when that call returns.
func (c *Card) Close() error {
	c.mu.Lock()
	c.closed = true
	select {
	case c.sem <- struct{}{}:
	default:
		c.mu.Unlock() // the holder of sem sees closed in unlock
		return nil
	}
	c.mu.Unlock()
	c.releaseHandleLocked()
	<-c.sem
	return nil
}

// lock takes sem, giving up with hwerr.ErrBusy when ctx ends first, and fails
// with ErrClosed after Close.
func (c *Card) lock(ctx context.Context, op string) error {
	if err := ctxErr(ctx, op); err != nil {
		return err
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%s: %w (%w)", op, hwerr.ErrBusy, ctx.Err())
	}
	if c.gone {
		<-c.sem
		return fmt.Errorf("%s: %w", op, ErrClosed)
	}
	return nil
}

// unlock releases sem, first releasing the handle when Close was called while
// sem was held.
func (c *Card) unlock() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		c.releaseHandleLocked()
	}
	<-c.sem
}

func (c *Card) releaseHandleLocked() {
	if c.gone {
		return
	}
	c.gone = true
	if c.txBegin != nil {
		close(c.txBegin) // the goroutine is idle: a call in flight holds sem
	}
	_ = c.handle.Disconnect(scard.LeaveCard)
	_ = c.sctx.Release()
}

func (c *Card) setATR(atr []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.atr = bytes.Clone(atr)
}

func (c *Card) readATRLocked() error {
	st, err := c.handle.Status()
	if err != nil {
		return c.failureLocked("card status", err)
	}
	c.setATR(st.Atr)
	return nil
}

// failureLocked classifies err from a call on the handle. A reset by another
// application is acknowledged (SCardReconnect with SCARD_LEAVE_CARD) so the
// handle works again, as is a protocol another application's connection
// negotiated after its reset; the failed command is not retried. Errors that only say
// the exchange failed (the card's connection went away mid-APDU) are checked
// against the card's status to tell a pulled card apart.
func (c *Card) failureLocked(op string, err error) error {
	switch {
	case errors.Is(err, scard.ErrResetCard):
		if rerr := c.handle.Reconnect(scard.ShareShared, scard.ProtocolAny, scard.LeaveCard); rerr != nil {
			return wrapErr(op, rerr)
		}
		if st, serr := c.handle.Status(); serr == nil {
			c.setATR(st.Atr)
		}
		return wrapErr(op, err)
	case errors.Is(err, scard.ErrProtoMismatch):
		// Another application reset the card and the next connection
		// negotiated another protocol (the ATR offers T=0 and T=1); pcscd
		// refused the command before sending it. Reconnecting adopts the
		// card's protocol; the caller starts over as after a reset.
		if rerr := c.handle.Reconnect(scard.ShareShared, scard.ProtocolAny, scard.LeaveCard); rerr != nil {
			return wrapErr(op, rerr)
		}
		return fmt.Errorf("%s: %w (%w)", op, ErrCardReset, err)
	case errors.Is(err, scard.ErrNotTransacted), errors.Is(err, scard.ErrCommError),
		errors.Is(err, scard.ErrUnknownError), errors.Is(err, scard.ErrInvalidHandle):
		if c.cardGoneLocked() {
			return fmt.Errorf("%s: %w (%w)", op, hwerr.ErrRemoved, err)
		}
	}
	return wrapErr(op, err)
}

// removalGrace is how long cardGoneLocked waits for pcscd to notice that a
// card whose exchange just failed is gone: pcscd polls presence every 400 ms.
const removalGrace = time.Second

// removalCheckMu serializes cardGoneLocked across Cards: ebfe/scard keeps a
// reader-name C string alive only until the next status call with the same
// name, and all these checks use the same name per reader.
var removalCheckMu sync.Mutex

// cardGoneLocked reports whether the card is no longer in the reader, waiting
// up to removalGrace (a blocking status wait, not a poll) for pcscd to see a
// removal. The trailing NUL in the reader name keeps the ebfe/scard C string
// of a Monitor's wait on the same reader apart; pcsc-lite reads the same name.
func (c *Card) cardGoneLocked() bool {
	removalCheckMu.Lock()
	defer removalCheckMu.Unlock()
	st := []scard.ReaderState{{Reader: c.reader + "\x00", CurrentState: scard.StateUnaware}}
	deadline := time.Now().Add(removalGrace)
	for {
		err := c.sctx.GetStatusChange(st, time.Until(deadline))
		switch {
		case errors.Is(err, scard.ErrTimeout):
			return false
		case err != nil:
			return errors.Is(wrapErr("", err), hwerr.ErrRemoved) || errors.Is(wrapErr("", err), hwerr.ErrUnavailable)
		case st[0].EventState&(scard.StateEmpty|scard.StateUnknown|scard.StateUnavailable) != 0:
			return true
		case time.Now().After(deadline):
			return false
		}
		st[0].CurrentState = st[0].EventState &^ scard.StateChanged
	}
}
