package tpm

import (
	"fmt"
	"unicode/utf8"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Policy holds the rules for a virtual card's PIN and PUK and the per-device
// limits. Zero fields take the values of DefaultPolicy.
type Policy struct {
	// MinPINLength is the shortest PIN or PUK accepted, in bytes (6).
	MinPINLength int
	// MaxPINLength is the longest PIN or PUK accepted, in bytes (127, as
	// on Windows virtual smart cards).
	MaxPINLength int
	// PINTries is how many wrong PINs in a row block the PIN (5, as on
	// Windows virtual smart cards).
	PINTries int
	// PUKTries is how many wrong PUKs in a row block the PUK (5).
	PUKTries int
	// MaxCards is how many virtual cards one device may hold (10).
	MaxCards int
}

// DefaultPolicy is the policy used for fields left zero.
var DefaultPolicy = Policy{
	MinPINLength: 6,
	MaxPINLength: 127,
	PINTries:     5,
	PUKTries:     5,
	MaxCards:     10,
}

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy
	if p.MinPINLength > 0 {
		d.MinPINLength = p.MinPINLength
	}
	if p.MaxPINLength > 0 {
		d.MaxPINLength = p.MaxPINLength
	}
	if p.PINTries > 0 {
		d.PINTries = p.PINTries
	}
	if p.PUKTries > 0 {
		d.PUKTries = p.PUKTries
	}
	if p.MaxCards > 0 {
		d.MaxCards = p.MaxCards
	}
	return d
}

// CheckPIN tells whether secret may be set as a new PIN or PUK (what names
// it in the error): hwerr.ErrPINPolicy wrapped with the rule broken. The
// error never contains the secret.
func (p Policy) CheckPIN(what string, secret []byte) error {
	p = p.withDefaults()
	switch {
	case len(secret) < p.MinPINLength:
		return fmt.Errorf("%s must be at least %d characters: %w", what, p.MinPINLength, hwerr.ErrPINPolicy)
	case len(secret) > p.MaxPINLength:
		return fmt.Errorf("%s must be at most %d characters: %w", what, p.MaxPINLength, hwerr.ErrPINPolicy)
	case !utf8.Valid(secret):
		return fmt.Errorf("%s must be valid UTF-8 text: %w", what, hwerr.ErrPINPolicy)
	}
	return nil
}

// CanCreate tells whether one more virtual card may be created on a device
// that already holds existing cards (the daemon counts its stored cards):
// hwerr.ErrLimit when Policy.MaxCards is reached.
func (t *TPM) CanCreate(existing int) error {
	if existing >= t.policy.MaxCards {
		return fmt.Errorf("this device already has %d virtual smart cards, the most allowed; delete one first: %w",
			existing, hwerr.ErrLimit)
	}
	return nil
}
