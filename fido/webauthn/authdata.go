// Package webauthn parses and verifies what a FIDO2 authenticator returns:
// authenticator data, COSE public keys, attestation statements ("packed" and
// "none") and assertion signatures with the signature counter check. It is
// pure Go and depends on no device. References: WebAuthn Level 2 §6.1
// (authenticator data), §8.2 (packed), §8.7 (none), CTAP 2.1 §6.
package webauthn

import (
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
)

// Authenticator data flags, WebAuthn §6.1.
const (
	FlagUP byte = 0x01 // user present
	FlagUV byte = 0x04 // user verified
	FlagAT byte = 0x40 // attested credential data included
	FlagED byte = 0x80 // extension data included
)

// Errors returned by the parsers and verifiers. Test with errors.Is.
var (
	// ErrMalformed means the bytes do not follow the format.
	ErrMalformed = errors.New("malformed authenticator data")
	// ErrUnsupportedAlgorithm means a COSE algorithm or key type other than
	// ES256 (-7) on P-256 or EdDSA (-8) on Ed25519.
	ErrUnsupportedAlgorithm = errors.New("unsupported COSE algorithm")
	// ErrBadSignature means a signature does not verify.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrRPIDMismatch means the rpIdHash is not SHA-256 of the expected RP id.
	ErrRPIDMismatch = errors.New("relying party id hash mismatch")
	// ErrUserNotPresent means user presence was required but the UP flag is
	// clear.
	ErrUserNotPresent = errors.New("user presence flag not set")
	// ErrUserNotVerified means user verification was required but the UV
	// flag is clear.
	ErrUserNotVerified = errors.New("user verification flag not set")
	// ErrPossibleClone means the signature counter did not increase: the
	// authenticator may have been cloned.
	ErrPossibleClone = errors.New("signature counter did not increase (possible cloned authenticator)")
)

// AuthData is parsed authenticator data, WebAuthn §6.1.
type AuthData struct {
	// Raw is the whole authenticator data as signed.
	Raw      []byte
	RPIDHash [32]byte
	Flags    byte
	Counter  uint32
	// Attested credential data (only when Flags has FlagAT).
	AAGUID       [16]byte
	CredentialID []byte
	// PublicKey is the credential public key (*ecdsa.PublicKey or
	// ed25519.PublicKey) and Alg its COSE algorithm.
	PublicKey crypto.PublicKey
	Alg       int
	// PublicKeyCOSE is the credential public key as COSE_Key bytes.
	PublicKeyCOSE []byte
	// Extensions is the CBOR extension map when Flags has FlagED.
	Extensions []byte
}

// maxCredentialIDLen bounds credential ids (WebAuthn §6.1: at most 1023).
const maxCredentialIDLen = 1023

// ParseAuthData parses authenticator data (WebAuthn §6.1): rpIdHash (32),
// flags (1), signCount (4, big endian), then attested credential data and
// extensions as the flags say.
func ParseAuthData(b []byte) (*AuthData, error) {
	if len(b) < 37 {
		return nil, fmt.Errorf("%w: %d bytes, need at least 37", ErrMalformed, len(b))
	}
	ad := &AuthData{Raw: b, Flags: b[32], Counter: binary.BigEndian.Uint32(b[33:37])}
	copy(ad.RPIDHash[:], b[:32])
	rest := b[37:]
	if ad.Flags&FlagAT != 0 {
		var err error
		if rest, err = ad.parseAttested(rest); err != nil {
			return nil, err
		}
	}
	if ad.Flags&FlagED != 0 {
		var ext map[string]any
		r, err := decMode.UnmarshalFirst(rest, &ext)
		if err != nil {
			return nil, fmt.Errorf("%w: extensions: %v", ErrMalformed, err)
		}
		ad.Extensions, rest = rest[:len(rest)-len(r)], r
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	return ad, nil
}

// parseAttested parses attested credential data (WebAuthn §6.5.1): AAGUID,
// credential id length and id, COSE_Key.
func (ad *AuthData) parseAttested(b []byte) ([]byte, error) {
	if len(b) < 18 {
		return nil, fmt.Errorf("%w: attested credential data too short", ErrMalformed)
	}
	copy(ad.AAGUID[:], b[:16])
	n := int(binary.BigEndian.Uint16(b[16:18]))
	b = b[18:]
	if n == 0 || n > maxCredentialIDLen || len(b) < n {
		return nil, fmt.Errorf("%w: credential id length %d", ErrMalformed, n)
	}
	ad.CredentialID, b = b[:n], b[n:]
	pub, alg, rest, err := parseCOSEKeyFirst(b)
	if err != nil {
		return nil, err
	}
	ad.PublicKey, ad.Alg, ad.PublicKeyCOSE = pub, alg, b[:len(b)-len(rest)]
	return rest, nil
}
