// Package p11crypto converts between PKCS#11 attribute and mechanism
// encodings and Go's crypto types: public keys from CKA_EC_PARAMS/CKA_EC_POINT
// and CKA_MODULUS/CKA_PUBLIC_EXPONENT, and raw ECDSA signatures to ASN.1
// DER (the DigestInfo that CKM_RSA_PKCS signs comes from package emsa). It
// is pure Go and parses bytes that come from modules, so each parser has a
// fuzz target.
package p11crypto

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// Named curve object identifiers (RFC 5480 §2.1.1.1).
var (
	oidP256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384 = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
)

// ErrMalformed is returned for attribute or signature bytes that do not
// parse.
var ErrMalformed = errors.New("malformed PKCS#11 value")

// ECPublicKey builds an ECDSA public key from CKA_EC_PARAMS (a DER named
// curve OID) and CKA_EC_POINT (PKCS#11 v2.40 §2.3.3: a DER OCTET STRING
// holding the uncompressed point; some modules give the bare point, which is
// accepted too). Only P-256 and P-384 are supported.
func ECPublicKey(params, point []byte) (*ecdsa.PublicKey, error) {
	var oid asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(params, &oid)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("CKA_EC_PARAMS: %w", ErrMalformed)
	}
	var curve elliptic.Curve
	switch {
	case oid.Equal(oidP256):
		curve = elliptic.P256()
	case oid.Equal(oidP384):
		curve = elliptic.P384()
	default:
		return nil, fmt.Errorf("curve %v is not supported", oid)
	}
	raw := ecPoint(point, curve)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
	if err != nil {
		return nil, fmt.Errorf("CKA_EC_POINT: %w", ErrMalformed)
	}
	return pub, nil
}

// ecPoint unwraps the DER OCTET STRING around an EC point when there is one
// and its content has the length of an uncompressed point on curve.
func ecPoint(point []byte, curve elliptic.Curve) []byte {
	want := 1 + 2*((curve.Params().BitSize+7)/8)
	if len(point) == want && point[0] == 4 {
		return point
	}
	var inner []byte
	rest, err := asn1.Unmarshal(point, &inner)
	if err != nil || len(rest) != 0 {
		return point
	}
	return inner
}

// RSAPublicKey builds an RSA public key from CKA_MODULUS and
// CKA_PUBLIC_EXPONENT (big-endian integers).
func RSAPublicKey(modulus, exponent []byte) (*rsa.PublicKey, error) {
	n := new(big.Int).SetBytes(modulus)
	e := new(big.Int).SetBytes(exponent)
	if n.BitLen() < 1024 || n.Bit(0) == 0 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, fmt.Errorf("RSA public key: %w", ErrMalformed)
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// ECDSASignatureDER converts a CKM_ECDSA signature (PKCS#11 v2.40 §2.3.1:
// r and s as big-endian integers of equal length, concatenated) into the
// ASN.1 DER Ecdsa-Sig-Value of RFC 3279 §2.2.3.
func ECDSASignatureDER(raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 || len(raw) > 2*66 {
		return nil, fmt.Errorf("ECDSA signature of %d bytes: %w", len(raw), ErrMalformed)
	}
	half := len(raw) / 2
	sig := struct{ R, S *big.Int }{
		R: new(big.Int).SetBytes(raw[:half]),
		S: new(big.Int).SetBytes(raw[half:]),
	}
	if sig.R.Sign() == 0 || sig.S.Sign() == 0 {
		return nil, fmt.Errorf("ECDSA signature with a zero component: %w", ErrMalformed)
	}
	return asn1.Marshal(sig)
}
