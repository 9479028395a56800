package fido

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	libfido2 "github.com/keys-pub/go-libfido2"

	"github.com/hwauthd/hwauthd/fido/webauthn"
	"github.com/hwauthd/hwauthd/hwerr"
)

// COSE algorithms for MakeCredential.
const (
	ES256 = webauthn.AlgES256
	EdDSA = webauthn.AlgEdDSA
)

// Attestation is the attestation statement of a new credential.
type Attestation struct {
	// Format is "packed" or "none".
	Format string
	Alg    int
	Sig    []byte
	// X5C holds the attestation certificate (libfido2 returns the leaf
	// only); empty for self attestation.
	X5C [][]byte
}

// Credential is a credential made by MakeCredential, its attestation
// verified.
type Credential struct {
	ID  []byte
	Alg int
	// PublicKeyCOSE is the COSE_Key from the authenticator data and
	// PublicKeyDER the same key as PKIX DER.
	PublicKeyCOSE []byte
	PublicKeyDER  []byte
	// AAGUID is the model id in lower-case hex.
	AAGUID string
	// AuthData is the raw authenticator data.
	AuthData    []byte
	Counter     uint32
	Attestation Attestation
}

// Assertion is one assertion from Assert. Verify it with
// webauthn.VerifyAssertion and the credential's stored public key.
type Assertion struct {
	CredentialID []byte
	// AuthData is the raw authenticator data that Sig signs with the
	// client data hash.
	AuthData []byte
	Sig      []byte
	Counter  uint32
	Flags    byte
}

// checkHash validates a client data hash (SHA-256, 32 bytes); go-libfido2
// panics on an empty slice.
func checkHash(cdh []byte) error {
	if len(cdh) != 32 {
		return fmt.Errorf("client data hash must be 32 bytes, have %d: %w", len(cdh), hwerr.ErrInvalidInput)
	}
	return nil
}

// MakeCredential registers a new credential (authenticatorMakeCredential,
// CTAP 2.1 §6.1) for rpID and the user, with alg ES256 or EdDSA, the PIN
// when the key has one (pin may be empty otherwise; it is zeroed before
// return) and a resident (discoverable) key when rk is set. The key waits
// for a touch; ctx or the touch timeout ends the wait. hwauthd verifies the
// attestation itself before returning.
func (k *Key) MakeCredential(ctx context.Context, rpID string, userID []byte, userName string, clientDataHash []byte, alg int, pin []byte, rk bool) (*Credential, error) {
	defer clear(pin)
	if err := checkMakeCredential(rpID, userID, userName, clientDataHash, alg); err != nil {
		return nil, fmt.Errorf("make credential: %w", err)
	}
	opts := &libfido2.MakeCredentialOpts{RK: libfido2.False}
	if rk {
		opts.RK = libfido2.True
	}
	var att *libfido2.Attestation
	err := k.run(ctx, "make credential", true, func() error {
		var err error
		att, err = k.dev.MakeCredential(clientDataHash, libfido2.RelyingParty{ID: rpID},
			libfido2.User{ID: userID, Name: userName}, libfido2.CredentialType(alg), pinString(pin), opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return verifyCredential(att, clientDataHash)
}

func checkMakeCredential(rpID string, userID []byte, userName string, cdh []byte, alg int) error {
	switch {
	case rpID == "":
		return fmt.Errorf("empty relying party id: %w", hwerr.ErrInvalidInput)
	case len(userID) == 0 || len(userID) > 64:
		return fmt.Errorf("user id must be 1 to 64 bytes: %w", hwerr.ErrInvalidInput)
	case userName == "":
		return fmt.Errorf("empty user name: %w", hwerr.ErrInvalidInput)
	case alg != ES256 && alg != EdDSA:
		return fmt.Errorf("COSE algorithm %d: %w", alg, hwerr.ErrNotSupported)
	}
	return checkHash(cdh)
}

// unwrapAuthData decodes the CBOR byte string libfido2 wraps authenticator
// data in.
func unwrapAuthData(b []byte) ([]byte, error) {
	var raw []byte
	if err := cbor.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: authenticator data: %v", hwerr.ErrProtocol, err)
	}
	return raw, nil
}

// verifyCredential checks the attestation of a new credential with
// fido/webauthn and builds the Credential.
func verifyCredential(att *libfido2.Attestation, cdh []byte) (*Credential, error) {
	ad, err := unwrapAuthData(att.AuthData)
	if err != nil {
		return nil, fmt.Errorf("make credential: %w", err)
	}
	st := &webauthn.Attestation{Format: att.Format, Alg: int(att.CredentialType), Sig: att.Sig}
	if len(att.Cert) > 0 {
		st.X5C = [][]byte{att.Cert}
		if c, err := x509.ParseCertificate(att.Cert); err == nil {
			st.Alg = algOfKey(c.PublicKey)
		}
	}
	parsed, err := webauthn.VerifyAttestation(st, ad, cdh)
	if err != nil {
		return nil, fmt.Errorf("make credential: %w: %w", hwerr.ErrProtocol, err)
	}
	der, err := x509.MarshalPKIXPublicKey(parsed.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("make credential: %w: %v", hwerr.ErrProtocol, err)
	}
	return &Credential{
		ID:            parsed.CredentialID,
		Alg:           parsed.Alg,
		PublicKeyCOSE: parsed.PublicKeyCOSE,
		PublicKeyDER:  der,
		AAGUID:        fmt.Sprintf("%x", parsed.AAGUID),
		AuthData:      ad,
		Counter:       parsed.Counter,
		Attestation:   Attestation{Format: st.Format, Alg: st.Alg, Sig: st.Sig, X5C: st.X5C},
	}, nil
}

func algOfKey(pub any) int {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return ES256
	case ed25519.PublicKey:
		return EdDSA
	}
	return 0
}

// Assert gets an assertion (authenticatorGetAssertion, CTAP 2.1 §6.2) for
// rpID over clientDataHash from one of credIDs (or a discoverable
// credential when credIDs is empty), with the PIN when given (zeroed before
// return) and user presence when up is set. Only the first assertion is
// returned (a go-libfido2 limit). Verify the result with
// webauthn.VerifyAssertion and the stored public key.
func (k *Key) Assert(ctx context.Context, rpID string, clientDataHash []byte, credIDs [][]byte, pin []byte, up bool) (*Assertion, error) {
	defer clear(pin)
	if rpID == "" {
		return nil, fmt.Errorf("get assertion: empty relying party id: %w", hwerr.ErrInvalidInput)
	}
	if err := checkHash(clientDataHash); err != nil {
		return nil, fmt.Errorf("get assertion: %w", err)
	}
	for _, id := range credIDs {
		if len(id) == 0 {
			return nil, fmt.Errorf("get assertion: empty credential id: %w", hwerr.ErrInvalidInput)
		}
	}
	opts := &libfido2.AssertionOpts{UP: libfido2.False}
	if up {
		opts.UP = libfido2.True
	}
	var a *libfido2.Assertion
	err := k.run(ctx, "get assertion", up, func() error {
		var err error
		a, err = k.dev.Assertion(rpID, clientDataHash, credIDs, pinString(pin), opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	ad, err := unwrapAuthData(a.AuthDataCBOR)
	if err != nil {
		return nil, fmt.Errorf("get assertion: %w", err)
	}
	parsed, err := webauthn.ParseAuthData(ad)
	if err != nil {
		return nil, fmt.Errorf("get assertion: %w: %w", hwerr.ErrProtocol, err)
	}
	return &Assertion{CredentialID: a.CredentialID, AuthData: ad, Sig: a.Sig, Counter: parsed.Counter, Flags: parsed.Flags}, nil
}
