package webauthn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// COSE algorithms this package verifies (RFC 9053).
const (
	AlgES256 = -7
	AlgEdDSA = -8
)

// decMode decodes authenticator output with bounds.
var decMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  8,
		MaxArrayElements: 64,
		MaxMapPairs:      64,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// coseKey holds the COSE_Key members for EC2 and OKP keys (RFC 9052 §7,
// RFC 9053 §7).
type coseKey struct {
	Kty int `cbor:"1,keyasint"`
	Alg int `cbor:"3,keyasint"`
	// Crv is a curve for EC2/OKP but the modulus for RSA: decoded later.
	Crv cbor.RawMessage `cbor:"-1,keyasint"`
	X   cbor.RawMessage `cbor:"-2,keyasint"`
	Y   cbor.RawMessage `cbor:"-3,keyasint"`
}

// ecParams decodes the curve and coordinates of an EC2 or OKP key.
func (k *coseKey) ecParams() (crv int, x, y []byte, err error) {
	if err = decMode.Unmarshal(k.Crv, &crv); err != nil {
		return 0, nil, nil, fmt.Errorf("%w: COSE crv: %v", ErrMalformed, err)
	}
	if err = decMode.Unmarshal(k.X, &x); err != nil {
		return 0, nil, nil, fmt.Errorf("%w: COSE x: %v", ErrMalformed, err)
	}
	if k.Y != nil {
		if err = decMode.Unmarshal(k.Y, &y); err != nil {
			return 0, nil, nil, fmt.Errorf("%w: COSE y: %v", ErrMalformed, err)
		}
	}
	return crv, x, y, nil
}

// ParseCOSEKey parses a COSE_Key holding an ES256 (EC2, P-256) or EdDSA
// (OKP, Ed25519) public key and returns it with its algorithm. Other key
// types and algorithms fail with ErrUnsupportedAlgorithm.
func ParseCOSEKey(b []byte) (crypto.PublicKey, int, error) {
	pub, alg, rest, err := parseCOSEKeyFirst(b)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%w: trailing bytes after COSE key", ErrMalformed)
	}
	return pub, alg, err
}

func parseCOSEKeyFirst(b []byte) (crypto.PublicKey, int, []byte, error) {
	var k coseKey
	rest, err := decMode.UnmarshalFirst(b, &k)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%w: COSE key: %v", ErrMalformed, err)
	}
	if !(k.Alg == AlgES256 && k.Kty == 2) && !(k.Alg == AlgEdDSA && k.Kty == 1) {
		return nil, 0, nil, fmt.Errorf("%w: alg %d kty %d", ErrUnsupportedAlgorithm, k.Alg, k.Kty)
	}
	crv, x, y, err := k.ecParams()
	if err != nil {
		return nil, 0, nil, err
	}
	switch {
	case k.Alg == AlgES256 && crv == 1:
		if len(x) != 32 || len(y) != 32 {
			return nil, 0, nil, fmt.Errorf("%w: P-256 coordinates", ErrMalformed)
		}
		raw := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("%w: P-256 point: %v", ErrMalformed, err)
		}
		return pub, AlgES256, rest, nil
	case k.Alg == AlgEdDSA && crv == 6:
		if len(x) != ed25519.PublicKeySize {
			return nil, 0, nil, fmt.Errorf("%w: Ed25519 key length", ErrMalformed)
		}
		return ed25519.PublicKey(x), AlgEdDSA, rest, nil
	}
	return nil, 0, nil, fmt.Errorf("%w: alg %d curve %d", ErrUnsupportedAlgorithm, k.Alg, crv)
}

// verifySignature checks sig over msg with pub for alg: ECDSA P-256 with
// SHA-256 and an ASN.1 DER signature, or pure Ed25519 (RFC 9053 §2).
func verifySignature(pub crypto.PublicKey, alg int, msg, sig []byte) error {
	switch alg {
	case AlgES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: ES256 needs an ECDSA key, have %T", ErrUnsupportedAlgorithm, pub)
		}
		h := crypto.SHA256.New()
		h.Write(msg)
		if !ecdsa.VerifyASN1(k, h.Sum(nil), sig) {
			return ErrBadSignature
		}
		return nil
	case AlgEdDSA:
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("%w: EdDSA needs an Ed25519 key, have %T", ErrUnsupportedAlgorithm, pub)
		}
		if !ed25519.Verify(k, msg, sig) {
			return ErrBadSignature
		}
		return nil
	}
	return fmt.Errorf("%w: %d", ErrUnsupportedAlgorithm, alg)
}

// algOf returns the COSE algorithm for a public key.
func algOf(pub crypto.PublicKey) int {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return AlgES256
	case ed25519.PublicKey:
		return AlgEdDSA
	}
	return 0
}
