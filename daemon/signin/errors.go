// Package signin is the sign-in domain of hwauthd, below the HTTP API (as
// tailscale's ipnlocal sits below localapi): registration and sign-in with
// proof of possession of a key (R4), choosing the registration, the
// certificate policy and identity mapping (R11), the registration
// requirements and kind policy (R12, R13), sign-in sessions and the card
// removal policy (R8), the failure limiter and blocked PINs (R2). It speaks
// Go, crypto and device types, never the API's, and returns typed errors
// (usable with errors.Is and errors.As); the daemon converts at its edge,
// and its one error mapping (daemon.MapError) turns the errors into the
// API's stable codes.
package signin

import (
	"errors"
	"fmt"
	"time"
)

// ErrShuttingDown refuses a session that would start after the session
// table closed.
var ErrShuttingDown = errors.New("hwauthd is shutting down; sign in again when it is back")

// TooManyAttemptsError is the failure limiter's refusal: Key failed too often
// within the window, and no device counter answers first.
type TooManyAttemptsError struct {
	Key        Key
	RetryAfter time.Duration // whole seconds, at least one
}

func (e *TooManyAttemptsError) Error() string {
	return fmt.Sprintf("too many failed attempts with this %s on %s for %s; try again in %s", e.Key.Secret, e.Key.Authenticator, e.Key.User, e.RetryAfter)
}

// KeyNotFoundError says that an authenticator has no key of the given id,
// or, when Key is empty, that it has several keys and none was named.
type KeyNotFoundError struct {
	Authenticator string
	Key           string // "" when none was named
	Keys          int    // how many keys the authenticator has
}

func (e *KeyNotFoundError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("authenticator %s has %d keys; name one with \"key\"", e.Authenticator, e.Keys)
	}
	return fmt.Sprintf("authenticator %s has no key %q", e.Authenticator, e.Key)
}

// CertificateError says that a certificate is missing, does not parse or is
// refused by the certificate policy. Its text is meant for the person
// signing in.
type CertificateError struct {
	Reason string
}

func (e *CertificateError) Error() string { return e.Reason }

// certificateErrorf returns a CertificateError with a formatted reason.
func certificateErrorf(format string, args ...any) error {
	return &CertificateError{Reason: fmt.Sprintf(format, args...)}
}

// MismatchError says that an authenticator is not the one it should be: it
// did not prove possession of the registered key, or its certificate does
// not map to the user. Its text is meant for the person signing in.
type MismatchError struct {
	Reason string
}

func (e *MismatchError) Error() string { return e.Reason }

// mismatchErrorf returns a MismatchError with a formatted reason.
func mismatchErrorf(format string, args ...any) error {
	return &MismatchError{Reason: fmt.Sprintf(format, args...)}
}

// ErrNoAuthenticator says that none of the user's registered
// authenticators is present.
var ErrNoAuthenticator = errors.New("insert your smart card or plug in your security key, then try again")

// NotRegisteredError says that a user has no registration at all (when
// Authenticator is empty), or that the authenticator named is present but
// not registered to the user.
type NotRegisteredError struct {
	User          string
	Authenticator string
}

func (e *NotRegisteredError) Error() string {
	if e.Authenticator != "" {
		return fmt.Sprintf("authenticator %s is not registered to this user", e.Authenticator)
	}
	return fmt.Sprintf("No smart card, virtual smart card or security key is registered to %s; register one first (often done by IT).", e.User)
}

// PossibleCloneError says that a security key's signature counter did not
// increase: the key may have been cloned.
type PossibleCloneError struct {
	Err error // from webauthn.VerifyAssertion
}

func (e *PossibleCloneError) Error() string {
	return fmt.Sprintf("the security key's signature counter went backwards (%v); it may have been cloned. Contact your administrator", e.Err)
}

func (e *PossibleCloneError) Unwrap() error { return e.Err }
