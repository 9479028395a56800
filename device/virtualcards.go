package device

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"time"

	"github.com/hwauthd/hwauthd/hwerr"
)

// VirtualCards provisions TPM virtual smart cards (R3); the TPM backend
// implements it. Ids are the authenticator ids ("vsc-…").
type VirtualCards interface {
	// Create makes a new card in the TPM; the request's secrets stay the
	// caller's to wipe.
	Create(ctx context.Context, req CreateVirtualCard) (VirtualCard, error)
	// List describes the cards of this device, oldest first.
	List(ctx context.Context) ([]VirtualCard, error)
	// Get describes one card.
	Get(ctx context.Context, id string) (VirtualCard, error)
	// Delete destroys a card; it cannot be undone.
	Delete(ctx context.Context, id string) error
	// CSR returns a certificate signing request (DER) signed in the TPM
	// with the card's key.
	CSR(ctx context.Context, id string, req CSRRequest) ([]byte, error)
	// ImportCertificate stores the certificate issued for the card's key;
	// one for another key is hwerr.ErrInvalidInput.
	ImportCertificate(ctx context.Context, id string, cert *x509.Certificate) (VirtualCard, error)
	// AttestationRequest starts the endorsement-key attestation exchange
	// for a card's key.
	AttestationRequest(ctx context.Context, id string) (AttestationRequest, error)
	// ActivateAttestation opens a verifier's challenge with the TPM and
	// returns the secret it held.
	ActivateAttestation(ctx context.Context, id string, ch AttestationChallenge) ([]byte, error)
	// AdminChallenge opens an admin-key unblock of a card.
	AdminChallenge(ctx context.Context, id string) (AdminChallenge, error)
	// AdminUnblock unblocks a card with the admin key's two responses; the
	// secrets stay the caller's to wipe.
	AdminUnblock(ctx context.Context, id string, responses [2][]byte, newPIN []byte) error
}

// VirtualCardAlgorithms lists the key algorithms a virtual card may be
// created with, the default first.
var VirtualCardAlgorithms = []KeyAlgorithm{ECCP256, ECCP384, RSAKey(2048)}

// VirtualCardAlgorithmNames lists VirtualCardAlgorithms, comma-separated,
// for help texts and refusals.
func VirtualCardAlgorithmNames() string { return names(VirtualCardAlgorithms) }

// CreateVirtualCard asks for a new virtual card.
type CreateVirtualCard struct {
	Label string
	// PIN and PUK are the card's secrets; PUK may be empty where the
	// policy allows a card without one.
	PIN, PUK []byte
	// Algorithm is one of VirtualCardAlgorithms; empty means the first.
	Algorithm KeyAlgorithm
	// Attest asks for a TPM2_Certify statement over the new key, with
	// Nonce (at most 64 bytes) as its qualifying data.
	Attest bool
	Nonce  []byte
	// AdminKey, when set, is IT's ECDSA P-256 admin key (AdminUnblock).
	AdminKey *ecdsa.PublicKey
}

// VirtualCard describes a TPM virtual smart card of this device.
type VirtualCard struct {
	ID    string
	Label string
	// Key is the card's one key, "9a", with its certificate once IT
	// imported one.
	Key Key
	// Device identifies the TPM that holds the key (its endorsement key
	// hash).
	Device string
	// PINRetriesLeft is the card's own PIN counter.
	PINRetriesLeft hwerr.Tries
	// Attestation is set in the answer to a Create that asked for it.
	Attestation *KeyAttestation
	CreatedAt   time.Time
}

// KeyAttestation proves that a new card's key lives in this device's TPM:
// a TPM2_Certify statement (TPMS_ATTEST) over the key's public area, signed
// by a TPM attestation key.
type KeyAttestation struct {
	// AKPublic is the attestation key's public key, PKIX DER.
	AKPublic []byte
	// KeyPublic is the certified key's TPMT_PUBLIC area.
	KeyPublic []byte
	// CertifyInfo is the signed TPMS_ATTEST structure; Signature the
	// attestation key's ECDSA signature (ASN.1 DER) over it.
	CertifyInfo, Signature []byte
	// Nonce is the qualifying data the statement includes.
	Nonce []byte
}

// CSRRequest asks for a certificate signing request. PIN authorizes the
// card's key in the TPM for the signature.
type CSRRequest struct {
	// Subject is the distinguished name, "CN=…,O=…".
	Subject  string
	DNSNames []string
	Emails   []string
	UPN      string
	PIN      []byte
}

// AttestationRequest is the first step of the endorsement-key attestation
// exchange, made by the device's TPM (package tpm) and checked by the
// verifier (package tpm/attest): the TPM's endorsement key certificate
// (DER) and public area (TPMT_PUBLIC), the attestation key's public area,
// the card key's public area, and the attestation key's TPM2_Certify
// statement over it with its ECDSA signature (ASN.1 DER) over
// SHA-256(CertifyInfo).
type AttestationRequest struct {
	EKCertificate []byte
	EKPublic      []byte
	AKPublic      []byte
	KeyPublic     []byte
	CertifyInfo   []byte
	Signature     []byte
}

// AttestationChallenge is the verifier's TPM2_MakeCredential output (TPM
// 2.0 Part 1 §24), which only the TPM of the request's EK opens, for its
// attestation key: the TPM2B_ID_OBJECT's and TPM2B_ENCRYPTED_SECRET's
// contents.
type AttestationChallenge struct {
	CredentialBlob  []byte
	EncryptedSecret []byte
}

// AdminChallenge is a card's challenge for an admin-key unblock: two
// nonces (the TPM's policy sessions' nonceTPM: for the new PIN, then for
// the counter reset), each to be signed with the admin key before Expires
// (package tpm/adminkey).
type AdminChallenge struct {
	Challenges [2][]byte
	Expires    time.Time
}
