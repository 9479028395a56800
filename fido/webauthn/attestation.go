package webauthn

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
)

// Attestation is an attestation statement (WebAuthn §6.5.4) in the formats
// this package verifies: "packed" (§8.2, with or without x5c) and "none"
// (§8.7).
type Attestation struct {
	Format string
	// Alg is the COSE algorithm of Sig (packed only).
	Alg int
	Sig []byte
	// X5C is the attestation certificate chain, leaf first; empty for self
	// attestation.
	X5C [][]byte
}

// packedStmt is the packed attStmt map.
type packedStmt struct {
	Alg int      `cbor:"alg"`
	Sig []byte   `cbor:"sig"`
	X5C [][]byte `cbor:"x5c,omitempty"`
}

// ParseAttestationStatement parses the CBOR attStmt of the given format.
func ParseAttestationStatement(format string, attStmt []byte) (*Attestation, error) {
	switch format {
	case "none":
		var m map[string]any
		if err := decMode.Unmarshal(attStmt, &m); err != nil || len(m) != 0 {
			return nil, fmt.Errorf("%w: none attestation must be an empty map", ErrMalformed)
		}
		return &Attestation{Format: format}, nil
	case "packed":
		var s packedStmt
		if err := decMode.Unmarshal(attStmt, &s); err != nil {
			return nil, fmt.Errorf("%w: packed attStmt: %v", ErrMalformed, err)
		}
		if len(s.Sig) == 0 || len(s.X5C) > 8 {
			return nil, fmt.Errorf("%w: packed attStmt fields", ErrMalformed)
		}
		return &Attestation{Format: format, Alg: s.Alg, Sig: s.Sig, X5C: s.X5C}, nil
	}
	return nil, fmt.Errorf("%w: attestation format %q", ErrUnsupportedAlgorithm, format)
}

// ErrAttestation means an attestation statement does not verify.
var ErrAttestation = errors.New("attestation does not verify")

// oidFIDOAAGUID is id-fido-gen-ce-aaguid (WebAuthn §8.2.1).
var oidFIDOAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}

// VerifyAttestation verifies an attestation statement over the raw
// authenticator data and the client data hash (WebAuthn §8.2.2, §8.7) and
// returns the parsed authenticator data with the credential public key.
// Packed self attestation is signed with the credential key itself; packed
// with x5c is signed with the leaf certificate's key, whose AAGUID extension,
// when present, must match. Trust in the certificate chain is the caller's
// policy and not checked here.
func VerifyAttestation(att *Attestation, authData, clientDataHash []byte) (*AuthData, error) {
	ad, err := ParseAuthData(authData)
	if err != nil {
		return nil, err
	}
	if ad.Flags&FlagAT == 0 || ad.PublicKey == nil {
		return nil, fmt.Errorf("%w: no attested credential data", ErrMalformed)
	}
	switch att.Format {
	case "none":
		return ad, nil
	case "packed":
	default:
		return nil, fmt.Errorf("%w: attestation format %q", ErrUnsupportedAlgorithm, att.Format)
	}
	msg := slices.Concat(authData, clientDataHash)
	if len(att.X5C) == 0 {
		if att.Alg != ad.Alg {
			return nil, fmt.Errorf("%w: self attestation alg %d, credential alg %d", ErrAttestation, att.Alg, ad.Alg)
		}
		if err := verifySignature(ad.PublicKey, att.Alg, msg, att.Sig); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrAttestation, err)
		}
		return ad, nil
	}
	if err := verifyX5C(att, ad, msg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAttestation, err)
	}
	return ad, nil
}

// verifyX5C checks a packed signature with the leaf certificate.
func verifyX5C(att *Attestation, ad *AuthData, msg []byte) error {
	leaf, err := x509.ParseCertificate(att.X5C[0])
	if err != nil {
		return fmt.Errorf("%w: attestation certificate: %v", ErrMalformed, err)
	}
	if algOf(leaf.PublicKey) != att.Alg {
		return fmt.Errorf("%w: certificate key does not match alg %d", ErrUnsupportedAlgorithm, att.Alg)
	}
	if err := verifySignature(leaf.PublicKey, att.Alg, msg, att.Sig); err != nil {
		return err
	}
	for _, e := range leaf.Extensions {
		if !e.Id.Equal(oidFIDOAAGUID) {
			continue
		}
		var v []byte
		if _, err := asn1.Unmarshal(e.Value, &v); err != nil || !bytes.Equal(v, ad.AAGUID[:]) {
			return errors.New("certificate AAGUID extension does not match authenticator data")
		}
	}
	return nil
}

// RPIDHash returns SHA-256 of the relying party id, as in rpIdHash.
func RPIDHash(rpID string) [32]byte { return sha256.Sum256([]byte(rpID)) }
