package store

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"time"
)

// maxName is the longest user, identity, authenticator or key id accepted.
const maxName = 1024

// idEncoding encodes registration ids: lower-case base32 without padding,
// URL-safe and case-insensitive.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a random, URL-safe registration id (16 random bytes, 26
// characters).
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return idEncoding.EncodeToString(b[:])
}

// Timestamp normalizes t the way every backend stores times: UTC, microsecond
// precision, no monotonic reading.
func Timestamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// CheckName returns ErrInvalid when a user name, identity, authenticator id
// or key id (what names it) cannot be stored: empty, longer than 1024
// bytes, or containing a NUL byte (backends use NUL as a key separator).
func CheckName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	case len(s) > maxName:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, what, maxName)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalid, what)
	}
	return nil
}

// Prepare checks a registration about to be added and fills what the store
// assigns: a new ID, CreatedAt (now when zero) and normalized times. Default
// is cleared; the backend decides it. Backends call it first in
// AddRegistration.
func Prepare(r Registration, limit int) (Registration, error) {
	if limit < 0 {
		return Registration{}, fmt.Errorf("%w: negative limit %d", ErrInvalid, limit)
	}
	if err := CheckName("user", r.User); err != nil {
		return Registration{}, err
	}
	if err := CheckName("authenticator id", r.AuthenticatorID); err != nil {
		return Registration{}, err
	}
	if strings.IndexByte(r.KeyID, 0) >= 0 || len(r.KeyID) > maxName {
		return Registration{}, fmt.Errorf("%w: bad key id", ErrInvalid)
	}
	r.ID = NewID()
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r.CreatedAt = Timestamp(r.CreatedAt)
	r.LastUsedAt = Timestamp(r.LastUsedAt)
	r.Default = false
	return r, nil
}

// LimitError returns ErrLimitReached wrapped with the counts, for messages.
func LimitError(have, limit int) error {
	return fmt.Errorf("%w: %d of %d registered", ErrLimitReached, have, limit)
}

// CheckCounter applies the FIDO2 signature counter rule of MarkUsed (WebAuthn
// §6.1.1): when both counters are non-zero the new one must be greater. It
// returns the counter to store.
func CheckCounter(stored, seen uint32) (uint32, error) {
	switch {
	case seen == 0:
		return stored, nil
	case stored != 0 && seen <= stored:
		return stored, fmt.Errorf("%w: stored %d, seen %d", ErrCounterRegressed, stored, seen)
	}
	return seen, nil
}
