package piv

import (
	"context"
	"errors"
	"fmt"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc/apdu"
)

// PIN and PUK length limits (SP 800-73-4 Part 2 §2.4.3): 6 to 8 characters,
// padded with FF to 8 bytes.
const (
	MinPINLength = 6
	MaxPINLength = 8
)

// PINStatus is what an empty VERIFY tells about the PIN.
type PINStatus struct {
	// Verified means the PIN is verified now; the card then does not report
	// the retry counter and RetriesLeft is unknown.
	Verified bool
	// Blocked means no tries are left.
	Blocked bool
	// RetriesLeft is the number of tries left, unknown when Verified.
	RetriesLeft hwerr.Tries
}

// PINStatus sends VERIFY without data (00 20 00 80, SP 800-73-4 Part 2
// §3.2.1), which reports the retry counter without spending a try.
// The answers it expects (9000, 63Cx, 6983) are read from the status word
// itself: an unverified PIN answers 63Cx on every signature, and wrapping
// that answer in an error would format it each time.
func (c *Client) PINStatus(ctx context.Context) (PINStatus, error) {
	_, err := apdu.Exchange(ctx, c.t, apdu.Command{INS: InsVerify, P2: KeyRefPIN})
	var se apdu.StatusError
	if err != nil && !errors.As(err, &se) {
		return PINStatus{}, fmt.Errorf("piv: pin status: %w", err)
	}
	switch n, counted := se.Retries(); {
	case err == nil:
		return PINStatus{Verified: true}, nil
	case se.SW == apdu.SWAuthBlocked:
		return PINStatus{Blocked: true, RetriesLeft: hwerr.TriesLeft(0)}, nil
	case counted:
		return PINStatus{RetriesLeft: hwerr.TriesLeft(n), Blocked: n == 0}, nil
	default:
		return PINStatus{}, fmt.Errorf("piv: pin status: %w", err)
	}
}

// PINRetries returns the PIN tries left, unknown when the PIN is verified
// and the card does not say. A blocked PIN returns 0 and an error wrapping
// hwerr.ErrPINBlocked.
func (c *Client) PINRetries(ctx context.Context) (hwerr.Tries, error) {
	st, err := c.PINStatus(ctx)
	switch {
	case err != nil:
		return hwerr.Tries{}, err
	case st.Blocked:
		return hwerr.TriesLeft(0), fmt.Errorf("piv: pin status: %w", hwerr.ErrPINBlocked)
	default:
		return st.RetriesLeft, nil
	}
}

// pad returns a secret padded with FF to 8 bytes, or hwerr.ErrPINPolicy when
// it is not 6 to 8 bytes long. The caller clears the result.
func pad(what string, secret []byte) ([]byte, error) {
	if len(secret) < MinPINLength || len(secret) > MaxPINLength {
		return nil, fmt.Errorf("piv: %s must be %d to %d characters: %w", what, MinPINLength, MaxPINLength, hwerr.ErrPINPolicy)
	}
	p := make([]byte, MaxPINLength)
	copy(p, secret)
	for i := len(secret); i < MaxPINLength; i++ {
		p[i] = 0xFF
	}
	return p, nil
}

// padPair pads two secrets into one 16-byte buffer, as CHANGE REFERENCE DATA
// and RESET RETRY COUNTER take them. The caller clears the result.
func padPair(whatA string, a []byte, whatB string, b []byte) ([]byte, error) {
	pa, err := pad(whatA, a)
	if err != nil {
		return nil, err
	}
	defer clear(pa)
	pb, err := pad(whatB, b)
	if err != nil {
		return nil, err
	}
	defer clear(pb)
	return append(append(make([]byte, 0, 2*MaxPINLength), pa...), pb...), nil
}

// secretErr turns the status of a command that checked a secret into the
// hwerr classes: 63Cx into *hwerr.PINIncorrect naming the secret, 6983 into
// hwerr.ErrPINBlocked or hwerr.ErrPUKBlocked.
func secretErr(op, what string, err error) error {
	var se apdu.StatusError
	if !errors.As(err, &se) {
		return err
	}
	if n, ok := se.Retries(); ok {
		return fmt.Errorf("piv: %s: %w", op, &hwerr.PINIncorrect{What: what, RetriesLeft: hwerr.TriesLeft(n)})
	}
	if se.SW == apdu.SWAuthBlocked {
		blocked := hwerr.ErrPINBlocked
		if what == "PUK" {
			blocked = hwerr.ErrPUKBlocked
		}
		return fmt.Errorf("piv: %s: %w", op, blocked)
	}
	return err
}

// VerifyPIN verifies the PIN (VERIFY 00 20 00 80, SP 800-73-4 Part 2
// §3.2.1). A wrong PIN returns *hwerr.PINIncorrect with the tries left; it is
// never retried. The padded copy is cleared before returning.
func (c *Client) VerifyPIN(ctx context.Context, pin []byte) error {
	p, err := pad("PIN", pin)
	if err != nil {
		return err
	}
	defer clear(p)
	_, err = c.exchange(ctx, "verify pin", apdu.Command{INS: InsVerify, P2: KeyRefPIN, Data: p})
	return secretErr("verify pin", "PIN", err)
}

// ChangePIN changes the PIN (CHANGE REFERENCE DATA 00 24 00 80, SP 800-73-4
// Part 2 §3.2.2).
func (c *Client) ChangePIN(ctx context.Context, oldPIN, newPIN []byte) error {
	return c.changeReference(ctx, KeyRefPIN, "PIN", oldPIN, newPIN)
}

// ChangePUK changes the PUK (CHANGE REFERENCE DATA 00 24 00 81).
func (c *Client) ChangePUK(ctx context.Context, oldPUK, newPUK []byte) error {
	return c.changeReference(ctx, KeyRefPUK, "PUK", oldPUK, newPUK)
}

func (c *Client) changeReference(ctx context.Context, ref byte, what string, oldValue, newValue []byte) error {
	data, err := padPair(what, oldValue, "new "+what, newValue)
	if err != nil {
		return err
	}
	defer clear(data)
	_, err = c.exchange(ctx, "change "+what, apdu.Command{INS: InsChangeReferenceData, P2: ref, Data: data})
	return secretErr("change "+what, what, err)
}

// UnblockPIN sets a new PIN with the PUK and restores the PIN's tries (RESET
// RETRY COUNTER 00 2C 00 80, SP 800-73-4 Part 2 §3.2.3). A wrong PUK returns
// *hwerr.PINIncorrect{What: "PUK"}; a blocked PUK hwerr.ErrPUKBlocked.
func (c *Client) UnblockPIN(ctx context.Context, puk, newPIN []byte) error {
	data, err := padPair("PUK", puk, "new PIN", newPIN)
	if err != nil {
		return err
	}
	defer clear(data)
	_, err = c.exchange(ctx, "unblock pin", apdu.Command{INS: InsResetRetryCounter, P2: KeyRefPIN, Data: data})
	return secretErr("unblock pin", "PUK", err)
}

// Logout resets the PIN's security status (VERIFY with P1 FF, SP 800-73-4
// Part 2 §3.2.1), so the next private-key operation needs the PIN again.
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.exchange(ctx, "logout", apdu.Command{INS: InsVerify, P1: 0xFF, P2: KeyRefPIN})
	return err
}
