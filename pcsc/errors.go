// Package pcsc is the PC/SC transport: it watches readers and cards through
// pcsc-lite (Monitor) and exchanges raw APDUs with a card (Card). It is the
// only package that links libpcsclite (through github.com/ebfe/scard), and it
// decodes every PC/SC error code into the hwerr classes here, so that the
// layers above never see an scard.Error without a class.
//
// APDU framing, GET RESPONSE chaining and status words are handled above, in
// pcsc/apdu; this package moves bytes.
package pcsc

import (
	"context"
	"errors"
	"fmt"

	"github.com/ebfe/scard"

	"github.com/hwauthd/hwauthd/hwerr"
)

// ErrCardReset means that another application reset the card while this
// connection was open (SCARD_W_RESET_CARD). The card is still there, but it
// lost its security status (a verified PIN) and its selected application, so
// the operation was not done; the connection has acknowledged the reset and
// can be used again, starting over with SELECT. It deliberately wraps no
// hwerr class: the card was neither removed nor is it busy.
var ErrCardReset = errors.New("card was reset by another application; its PIN status and selected application are lost")

// ErrClosed means the Card was used after Close.
var ErrClosed = errors.New("card connection closed")

// errorClass maps PC/SC error codes to the hwerr class they belong to. Codes
// not listed are wrapped without a class.
var errorClass = map[scard.Error]error{
	scard.ErrRemovedCard:        hwerr.ErrRemoved,
	scard.ErrNoSmartcard:        hwerr.ErrRemoved,
	scard.ErrUnknownReader:      hwerr.ErrRemoved,
	scard.ErrReaderUnavailable:  hwerr.ErrRemoved,
	scard.ErrUnpoweredCard:      hwerr.ErrRemoved,
	scard.ErrNoService:          hwerr.ErrUnavailable,
	scard.ErrServiceStopped:     hwerr.ErrUnavailable,
	scard.ErrNoReadersAvailable: hwerr.ErrUnavailable,
	scard.ErrShutdown:           hwerr.ErrUnavailable,
	scard.ErrSharingViolation:   hwerr.ErrBusy,
	scard.ErrTimeout:            hwerr.ErrBusy,
	scard.ErrServerTooBusy:      hwerr.ErrBusy,
	scard.ErrCancelled:          hwerr.ErrCanceled,
	scard.ErrUnresponsiveCard:   hwerr.ErrProtocol,
	scard.ErrInvalidAtr:         hwerr.ErrProtocol,
	scard.ErrUnsupportedCard:    hwerr.ErrNotSupported,
	scard.ErrCardUnsupported:    hwerr.ErrNotSupported,
	scard.ErrProtoMismatch:      hwerr.ErrNotSupported,
	scard.ErrResetCard:          ErrCardReset,
}

// wrapErr wraps a PC/SC failure of operation op in its class, keeping the
// scard.Error in the chain for errors.As and its text in the message:
// "transmit: authenticator removed (scard: Card was removed.)".
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var code scard.Error
	if errors.As(err, &code) {
		if class, ok := errorClass[code]; ok {
			return fmt.Errorf("%s: %w (%w)", op, class, err)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// ctxErr returns a wrapped hwerr.ErrCanceled when ctx has ended, else nil.
func ctxErr(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w (%w)", op, hwerr.ErrCanceled, err)
	}
	return nil
}
