package pivbackend

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// PIV instructions the tests pick commands by (SP 800-73-4 part 2).
const (
	insVerify = 0x20
	insChange = 0x24
	insSign   = 0x87
)

// resettingCard is the emulated PIV card under a Device, on a connection
// where another application resets the card before the commands resetAt
// picks: as pcsc-lite does, the connection then refuses that command with
// pcsc.ErrCardReset before it reaches the card, and the card has lost its
// PIN status. It counts the PIN commands the card answered.
type resettingCard struct {
	card    *pivcard.Card
	resetAt func(cmd []byte) bool
	resets  int
	// pinCommands counts VERIFY (with a PIN) and CHANGE REFERENCE DATA
	// commands that reached the card.
	pinCommands int
}

func (r *resettingCard) Transmit(_ context.Context, cmd []byte) ([]byte, error) {
	if r.resetAt != nil && r.resetAt(cmd) {
		r.resets++
		r.card.Reset()
		return nil, fmt.Errorf("transmit: %w", pcsc.ErrCardReset)
	}
	if isPINCommand(cmd) {
		r.pinCommands++
	}
	return r.card.Transmit(cmd), nil
}

func (r *resettingCard) Transaction(_ context.Context, fn func() error) error { return fn() }
func (r *resettingCard) Close() error                                         { return nil }

// isPINCommand reports whether cmd carries a PIN: VERIFY with data (not the
// empty status VERIFY, not the logout with P1 FF) or CHANGE REFERENCE DATA.
func isPINCommand(cmd []byte) bool {
	return len(cmd) > 5 && (cmd[1] == insVerify && cmd[2] == 0x00 || cmd[1] == insChange)
}

// nth picks the first n commands with instruction ins (n < 0: every one);
// of the VERIFY commands, only those that carry a PIN.
func nth(ins byte, n int) func([]byte) bool {
	seen := 0
	return func(cmd []byte) bool {
		if cmd[1] != ins || ins == insVerify && !isPINCommand(cmd) {
			return false
		}
		seen++
		return n < 0 || seen <= n
	}
}

func openResetting(t *testing.T) (*Device, *resettingCard, *x509.Certificate) {
	t.Helper()
	card, err := pivcard.New(pivcard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rc := &resettingCard{card: card}
	d, err := open(context.Background(), "Test PCD 00 00", func(context.Context, string) (cardConn, error) { return rc, nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	cert, err := x509.ParseCertificate(card.Certificate(piv.SlotAuthentication))
	if err != nil {
		t.Fatal(err)
	}
	return d, rc, cert
}

func triesLeft(t *testing.T, d *Device) int {
	t.Helper()
	st, err := d.PINState(context.Background())
	n, ok := st.RetriesLeft.Left()
	if err != nil || !ok {
		t.Fatalf("PIN state: %+v, %v", st, err)
	}
	return n
}

// TestResetDuringSignStartsOver: a reset met at the PIN's VERIFY (which
// never reached the card) or at the signature after the VERIFY was
// answered costs no try; the request starts over and signs. A reset met
// after a wrong PIN, or after a PIN change was answered, does not repeat it.
// Resets without end fail busy, with no try spent.
func TestResetDuringSignStartsOver(t *testing.T) {
	digest := sha256.Sum256([]byte("reset under the request"))
	sign := func(d *Device, pin string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return d.Sign(ctx, device.SignRequest{Key: "9a", Algorithm: device.ECDSASHA256, Digest: digest[:], PIN: []byte(pin)})
	}
	for _, tc := range []struct {
		name    string
		resetAt func([]byte) bool
		// resets and PIN commands the card answered
		resets, pinCommands int
	}{
		{"at the VERIFY", nth(insVerify, 1), 1, 1},
		{"at the signature", nth(insSign, 1), 1, 2},
		{"at the signature twice", nth(insSign, 2), 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, rc, cert := openResetting(t)
			rc.resetAt = tc.resetAt
			sig, err := sign(d, pivcard.DefaultPIN)
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
				t.Error("the signature does not verify")
			}
			if rc.resets != tc.resets || rc.pinCommands != tc.pinCommands {
				t.Errorf("%d resets, %d PIN commands answered; want %d, %d", rc.resets, rc.pinCommands, tc.resets, tc.pinCommands)
			}
			if n := triesLeft(t, d); n != pivcard.DefaultTries {
				t.Errorf("%d tries left, want %d", n, pivcard.DefaultTries)
			}
		})
	}

	t.Run("wrong PIN, then a reset at the logout", func(t *testing.T) {
		d, rc, _ := openResetting(t)
		rc.resetAt = func(cmd []byte) bool { return cmd[1] == insVerify && cmd[2] == 0xFF && rc.resets == 0 }
		_, err := sign(d, "000000")
		var wrong *hwerr.PINIncorrect
		if !errors.As(err, &wrong) || wrong.RetriesLeft != hwerr.TriesLeft(pivcard.DefaultTries-1) {
			t.Fatalf("sign with a wrong PIN: %v", err)
		}
		if rc.resets != 1 || rc.pinCommands != 1 {
			t.Errorf("%d resets, %d PIN commands answered; want the wrong PIN tried once", rc.resets, rc.pinCommands)
		}
		if n := triesLeft(t, d); n != pivcard.DefaultTries-1 {
			t.Errorf("%d tries left, want %d", n, pivcard.DefaultTries-1)
		}
	})

	t.Run("PIN changed, then a reset at the logout", func(t *testing.T) {
		d, rc, _ := openResetting(t)
		rc.resetAt = func(cmd []byte) bool { return cmd[1] == insVerify && cmd[2] == 0xFF && rc.resets == 0 }
		if err := d.ChangePIN(context.Background(), []byte(pivcard.DefaultPIN), []byte("654321")); err != nil {
			t.Fatalf("change PIN: %v", err)
		}
		if rc.resets != 1 || rc.pinCommands != 1 {
			t.Errorf("%d resets, %d PIN commands answered; want the change sent once", rc.resets, rc.pinCommands)
		}
		if n := triesLeft(t, d); n != pivcard.DefaultTries {
			t.Errorf("%d tries left, want %d", n, pivcard.DefaultTries)
		}
		if _, err := sign(d, "654321"); err != nil {
			t.Errorf("sign with the new PIN: %v", err)
		}
	})

	t.Run("reset without end", func(t *testing.T) {
		d, rc, _ := openResetting(t)
		rc.resetAt = nth(insSign, -1)
		_, err := sign(d, pivcard.DefaultPIN)
		if !errors.Is(err, hwerr.ErrBusy) {
			t.Fatalf("sign under endless resets: %v, want busy", err)
		}
		if rc.resets != resetAttempts || rc.pinCommands != resetAttempts {
			t.Errorf("%d resets, %d PIN commands answered; want %d each", rc.resets, rc.pinCommands, resetAttempts)
		}
		if n := triesLeft(t, d); n != pivcard.DefaultTries {
			t.Errorf("%d tries left, want %d", n, pivcard.DefaultTries)
		}
	})
}
