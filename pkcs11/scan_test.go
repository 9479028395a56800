package pkcs11

import (
	"context"
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pkcs11/wire"
)

func TestSkipReader(t *testing.T) {
	pivReader := func(r string) bool { return r == "Test PCD 00 00" }
	inReader := &wire.Token{SlotDescription: "Test PCD 00 00", SlotFlags: ckfRemovableDevice | 1}
	otherReader := &wire.Token{SlotDescription: "Test PCD 00 01", SlotFlags: ckfRemovableDevice | 1}
	fixed := &wire.Token{SlotDescription: "Test PCD 00 00", SlotFlags: 1}
	for _, tc := range []struct {
		name string
		cfg  Config
		tok  *wire.Token
		want bool
	}{
		{"PIV card's reader", Config{SkipReader: pivReader}, inReader, true},
		{"another reader", Config{SkipReader: pivReader}, otherReader, false},
		{"not a removable slot", Config{SkipReader: pivReader}, fixed, false},
		{"include_piv", Config{SkipReader: pivReader, IncludePIV: true}, inReader, false},
		{"no callback", Config{}, inReader, false},
	} {
		b := NewBackend(tc.cfg, nil)
		if got := b.skip(tc.tok); got != tc.want {
			t.Errorf("%s: skip = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestTokenRemoved deletes a token while the backend runs: Rescan detaches
// it, and its Device answers ErrRemoved.
func TestTokenRemoved(t *testing.T) {
	s := newSoftToken(t, Config{})
	other := s.device(t, "other")
	s.hsm.DeleteToken("other")
	s.b.Rescan()
	waitFor(t, s.b, "the token detached", func() bool { return s.host.count() == 1 })
	if s.host.byLabel("hw") == nil {
		t.Error("the remaining token was detached too")
	}
	if err := other.VerifyPIN(context.Background(), []byte(testPIN)); !errors.Is(err, hwerr.ErrRemoved) {
		t.Errorf("removed token: err = %v, want ErrRemoved", err)
	}
}
