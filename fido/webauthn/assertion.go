package webauthn

import (
	"crypto"
	"fmt"
	"slices"
)

// CounterError reports a signature counter that did not increase. It
// matches ErrPossibleClone with errors.Is.
type CounterError struct {
	Last, Got uint32
}

func (e *CounterError) Error() string {
	return fmt.Sprintf("signature counter %d after %d: possible cloned authenticator", e.Got, e.Last)
}

// Is makes errors.Is(err, ErrPossibleClone) true.
func (e *CounterError) Is(target error) bool { return target == ErrPossibleClone }

// VerifyAssertion verifies an assertion (WebAuthn §7.2 steps 13–21): the
// rpIdHash, the UP and UV flags when required, the signature over
// authData || clientDataHash with the stored public key, and the signature
// counter against lastCounter. It returns the new counter. A counter that
// does not increase returns the new counter with a *CounterError (the
// signature itself verified); both counters zero means the authenticator
// has no counter, which is allowed.
func VerifyAssertion(pub crypto.PublicKey, rpID string, clientDataHash, authData, sig []byte, requireUP, requireUV bool, lastCounter uint32) (uint32, error) {
	ad, err := ParseAuthData(authData)
	if err != nil {
		return 0, err
	}
	if ad.RPIDHash != RPIDHash(rpID) {
		return 0, ErrRPIDMismatch
	}
	if requireUP && ad.Flags&FlagUP == 0 {
		return 0, ErrUserNotPresent
	}
	if requireUV && ad.Flags&FlagUV == 0 {
		return 0, ErrUserNotVerified
	}
	alg := algOf(pub)
	if alg == 0 {
		return 0, fmt.Errorf("%w: key type %T", ErrUnsupportedAlgorithm, pub)
	}
	if err := verifySignature(pub, alg, slices.Concat(authData, clientDataHash), sig); err != nil {
		return 0, err
	}
	if (ad.Counter != 0 || lastCounter != 0) && ad.Counter <= lastCounter {
		return ad.Counter, &CounterError{Last: lastCounter, Got: ad.Counter}
	}
	return ad.Counter, nil
}
