package pcsc

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ebfe/scard"

	"github.com/hwauthd/hwauthd/hwerr"
)

func TestWrapErrClasses(t *testing.T) {
	cases := []struct {
		code scard.Error
		want error
	}{
		{scard.ErrRemovedCard, hwerr.ErrRemoved},
		{scard.ErrNoSmartcard, hwerr.ErrRemoved},
		{scard.ErrUnknownReader, hwerr.ErrRemoved},
		{scard.ErrReaderUnavailable, hwerr.ErrRemoved},
		{scard.ErrUnpoweredCard, hwerr.ErrRemoved},
		{scard.ErrNoService, hwerr.ErrUnavailable},
		{scard.ErrServiceStopped, hwerr.ErrUnavailable},
		{scard.ErrNoReadersAvailable, hwerr.ErrUnavailable},
		{scard.ErrShutdown, hwerr.ErrUnavailable},
		{scard.ErrSharingViolation, hwerr.ErrBusy},
		{scard.ErrTimeout, hwerr.ErrBusy},
		{scard.ErrServerTooBusy, hwerr.ErrBusy},
		{scard.ErrCancelled, hwerr.ErrCanceled},
		{scard.ErrUnresponsiveCard, hwerr.ErrProtocol},
		{scard.ErrInvalidAtr, hwerr.ErrProtocol},
		{scard.ErrUnsupportedCard, hwerr.ErrNotSupported},
		{scard.ErrCardUnsupported, hwerr.ErrNotSupported},
		{scard.ErrProtoMismatch, hwerr.ErrNotSupported},
		{scard.ErrResetCard, ErrCardReset},
	}
	if len(cases) != len(errorClass) {
		t.Fatalf("table tests %d codes, errorClass maps %d", len(cases), len(errorClass))
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%#x", uint32(tc.code)), func(t *testing.T) {
			err := wrapErr("transmit", tc.code)
			if !errors.Is(err, tc.want) {
				t.Fatalf("wrapErr(%v) = %v, want class %v", tc.code, err, tc.want)
			}
			var code scard.Error
			if !errors.As(err, &code) || code != tc.code {
				t.Fatalf("wrapErr(%v) lost the scard code: %v", tc.code, err)
			}
			if !strings.HasPrefix(err.Error(), "transmit: ") || !strings.Contains(err.Error(), tc.code.Error()) {
				t.Fatalf("message %q lacks the operation or the PC/SC text %q", err, tc.code.Error())
			}
		})
	}
}

func TestWrapErrReset(t *testing.T) {
	err := wrapErr("transmit", scard.ErrResetCard)
	for _, class := range []error{hwerr.ErrRemoved, hwerr.ErrUnavailable, hwerr.ErrBusy} {
		if errors.Is(err, class) {
			t.Fatalf("a reset card is not %v: %v", class, err)
		}
	}
}

func TestWrapErrUnclassed(t *testing.T) {
	err := wrapErr("transmit", scard.ErrInternalError)
	var code scard.Error
	if !errors.As(err, &code) || code != scard.ErrInternalError {
		t.Fatalf("wrapErr lost the code: %v", err)
	}
	for _, class := range []error{hwerr.ErrRemoved, hwerr.ErrUnavailable, hwerr.ErrBusy, hwerr.ErrCanceled} {
		if errors.Is(err, class) {
			t.Fatalf("unmapped code classed as %v", class)
		}
	}
	if wrapErr("x", nil) != nil {
		t.Fatal("wrapErr(nil) != nil")
	}
}

func TestEventTypeString(t *testing.T) {
	for typ, want := range map[EventType]string{
		ReaderAdded: "reader-added", ReaderRemoved: "reader-removed", CardInserted: "card-inserted",
		CardRemoved: "card-removed", ServiceDown: "service-down", ServiceUp: "service-up", 99: "EventType(99)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(typ), got, want)
		}
	}
}
