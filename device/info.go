package device

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Info describes a present device in Go and crypto terms; the daemon
// renders it for the API (PEM, JSON) in one place.
type Info struct {
	// ID is the authenticator id ("piv-…", "vsc-…", "p11-…", "fido-…").
	ID      string
	Kind    Kind
	Backend string // one of the Backend… names
	// Reader is the PC/SC reader the device is in, "" for none.
	Reader string
	Label  string
	Serial string
	// Device identifies the hardware behind the authenticator: a virtual
	// card's TPM (its endorsement key hash), or for a PIV card whose
	// card-authentication key (slot 9E) answered the challenge at
	// insertion, "piv-9e:" and the SHA-256 of that key (PKIX DER) in hex.
	Device string
	// CardAuth is what the card-authentication challenge at insertion
	// showed; zero when the device has no such key.
	CardAuth CardAuth
	PIN      PINState
	// FIDO describes a security key as it describes itself; nil for other
	// kinds.
	FIDO *FIDOInfo
	Keys []Key
}

// Kind is what sort of authenticator a device is.
type Kind string

// The kinds of authenticator.
const (
	KindSmartcard        Kind = "smartcard"
	KindVirtualSmartcard Kind = "virtual-smartcard"
	KindSecurityKey      Kind = "security-key"
)

// The backends that drive authenticators, as Info.Backend names them.
const (
	BackendPIV    = "piv"
	BackendPKCS11 = "pkcs11"
	BackendTPM    = "tpm"
	BackendFIDO2  = "fido2"
)

// CardAuth is the outcome of a PIV card's card-authentication challenge
// (slot 9E) at insertion.
type CardAuth string

// The outcomes of the card-authentication challenge; the zero value means
// the card has no card-authentication key.
const (
	CardAuthVerified CardAuth = "verified"
	CardAuthFailed   CardAuth = "failed"
)

// PINState is what is known of a device's PIN.
type PINState struct {
	RetriesLeft hwerr.Tries
	Blocked     bool
	// Verified is set when the device reports its PIN verified (by
	// another application's login).
	Verified bool
}

// PINStateOf is the state of a PIN whose counter says tries: blocked when
// no try is left.
func PINStateOf(tries hwerr.Tries) PINState {
	return PINState{RetriesLeft: tries, Blocked: tries.Exhausted()}
}

// FIDOInfo is what a FIDO2 security key says about itself (CTAP 2.1 §6.4,
// authenticatorGetInfo).
type FIDOInfo struct {
	// AAGUID is the model identifier in hex.
	AAGUID   string
	Versions []string
	// Options are the key's option flags: clientPin, rk, uv, up, plat.
	Options map[string]bool
	// PINSet reports whether the key has a PIN.
	PINSet bool
}

// Key is one key of a device, as piv-go's KeyInfo describes a slot.
type Key struct {
	// ID is the PIV slot ("9a"), a PKCS#11 CKA_ID in hex, or "9a" for a
	// virtual card's single key.
	ID        string
	Algorithm KeyAlgorithm
	// Public is the key's public half: *ecdsa.PublicKey or *rsa.PublicKey.
	Public crypto.PublicKey
	// Certificate is the key's certificate, parsed once when the device
	// read it; nil when the key has none.
	Certificate *x509.Certificate
}

// KeyAlgorithm names the algorithm of a key as the API does: ecc-p256,
// ecc-p384, or rsa-N for an N-bit RSA key.
type KeyAlgorithm string

// The elliptic-curve key algorithms; RSA ones are named by size (RSAKey).
const (
	ECCP256 KeyAlgorithm = "ecc-p256"
	ECCP384 KeyAlgorithm = "ecc-p384"
)

// RSAKey is the algorithm of an RSA key of bits bits.
func RSAKey(bits int) KeyAlgorithm { return KeyAlgorithm(fmt.Sprintf("rsa-%d", bits)) }

// KeyAlgorithmOf names the algorithm of a public key; it fails with
// hwerr.ErrNotSupported for a key of another type or curve.
func KeyAlgorithmOf(pub crypto.PublicKey) (KeyAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ECCP256, nil
		case elliptic.P384():
			return ECCP384, nil
		}
		return "", fmt.Errorf("elliptic curve %s: %w", k.Curve.Params().Name, hwerr.ErrNotSupported)
	case *rsa.PublicKey:
		return RSAKey(k.N.BitLen()), nil
	}
	return "", fmt.Errorf("public key type %T: %w", pub, hwerr.ErrNotSupported)
}

// NewKey describes a key from its public half and, when it has one, its
// certificate in DER, parsed here once.
func NewKey(id string, pub crypto.PublicKey, certDER []byte) (Key, error) {
	alg, err := KeyAlgorithmOf(pub)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", id, err)
	}
	k := Key{ID: id, Algorithm: alg, Public: pub}
	if len(certDER) > 0 {
		if k.Certificate, err = x509.ParseCertificate(certDER); err != nil {
			return Key{}, fmt.Errorf("key %s: certificate: %w", id, err)
		}
	}
	return k, nil
}

// ParseKey is NewKey with the public key in PKIX DER.
func ParseKey(id string, pubDER, certDER []byte) (Key, error) {
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: public key: %w", id, err)
	}
	return NewKey(id, pub, certDER)
}
