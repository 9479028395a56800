package ipc

import (
	"time"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Backend states in BackendStatus.State.
const (
	BackendUp       = "up"
	BackendDown     = "down"
	BackendAbsent   = "absent"
	BackendDisabled = "disabled"
)

// Status is the answer of GET /v1/status.
type Status struct {
	Version       string                   `json:"version"`
	UptimeSeconds int64                    `json:"uptime_seconds"`
	Backends      map[string]BackendStatus `json:"backends"`
	// Policy is what the configured policy lets users do themselves.
	Policy StatusPolicy `json:"policy"`
}

// StatusPolicy is the part of the configured policy that sign-in clients
// word their advice by.
type StatusPolicy struct {
	// SelfService: users register and remove their own authenticators.
	SelfService bool `json:"self_service"`
	// SelfServiceUnblock: users unblock their own PINs with the PUK.
	SelfServiceUnblock bool `json:"self_service_unblock"`
	// Linking: account linking is on (the "link" rule of signin.mapping);
	// when off, identity links are kept but not used to sign in.
	Linking bool `json:"linking"`
}

// BackendStatus is the state of one backend ("pcsc", "pkcs11", "tpm",
// "fido2") in Status.
type BackendStatus struct {
	// State is BackendUp, BackendDown, BackendAbsent or BackendDisabled.
	State string `json:"state"`
	// Detail says why a backend is down, in words for people.
	Detail string `json:"detail,omitempty"`
	// Readers is the number of PC/SC readers (pcsc only).
	Readers *int `json:"readers,omitempty"`
	// Manufacturer is the TPM manufacturer (tpm only).
	Manufacturer string `json:"manufacturer,omitempty"`
	// Devices is the number of devices seen: fido2 keys, pkcs11 tokens, or
	// for tpm the virtual smart cards in the TPM.
	Devices *int `json:"devices,omitempty"`
	// TPM is the TPM's lockout state and room for cards (tpm only, when
	// it answers).
	TPM *TPMStatus `json:"tpm,omitempty"`
}

// TPMStatus is what IT needs to know of the TPM behind virtual smart cards.
type TPMStatus struct {
	// Lockout is the TPM's dictionary-attack state. Virtual card PINs do
	// not count towards it (each card counts its own tries in the TPM).
	Lockout TPMLockout `json:"lockout"`
	// Cards is how many virtual cards this device holds; MaxCards the most
	// it may (config max_cards, never more than Cards+CardsLeft).
	Cards    int `json:"cards"`
	MaxCards int `json:"max_cards"`
	// CardsLeft estimates how many more cards the TPM has room for (a TPM
	// does not report free NV bytes; see docs/config.md).
	CardsLeft int `json:"cards_left_estimate"`
	// PersistentAvail is the TPM's own TPM_PT_HR_PERSISTENT_AVAIL.
	PersistentAvail int `json:"persistent_avail"`
}

// TPMLockout is the TPM's dictionary-attack state (TPM_PT_MAX_AUTH_FAIL,
// TPM_PT_LOCKOUT_COUNTER, TPM_PT_LOCKOUT_INTERVAL, TPM_PT_LOCKOUT_RECOVERY,
// TPMA_PERMANENT inLockout).
type TPMLockout struct {
	MaxTries        uint32 `json:"max_tries"`
	Failures        uint32 `json:"failures"`
	IntervalSeconds uint32 `json:"interval_seconds"`
	RecoverySeconds uint32 `json:"recovery_seconds"`
	InLockout       bool   `json:"in_lockout"`
}

// Reader is one PC/SC reader in GET /v1/readers.
type Reader struct {
	Name        string `json:"name"`
	CardPresent bool   `json:"card_present"`
	// ATR is the card's answer-to-reset in hex, when a card is present.
	ATR string `json:"atr,omitempty"`
}

// ReadersResponse is the answer of GET /v1/readers.
type ReadersResponse struct {
	Readers []Reader `json:"readers"`
}

// Authenticator kinds.
const (
	KindSmartcard        = "smartcard"
	KindVirtualSmartcard = "virtual-smartcard"
	KindSecurityKey      = "security-key"
)

// Authenticator backends.
const (
	BackendPIV    = "piv"
	BackendPKCS11 = "pkcs11"
	BackendTPM    = "tpm"
	BackendFIDO2  = "fido2"
)

// Values of Authenticator.CardAuthentication.
const (
	CardAuthVerified = "verified"
	CardAuthFailed   = "failed"
)

// Authenticator is a present authenticator, in GET /v1/authenticators and
// GET /v1/authenticators/{id}.
type Authenticator struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Backend string `json:"backend"`
	Reader  string `json:"reader,omitempty"`
	Label   string `json:"label"`
	Serial  string `json:"serial,omitempty"`
	// Device identifies the TPM of a virtual smart card (its endorsement
	// key hash); empty for other kinds.
	// For a PIV card whose card-authentication key (slot 9E) answered the
	// challenge at insertion, Device is "piv-9e:" and the SHA-256 of that
	// key (PKIX DER) in hex: the card's own identity, which registrations
	// record.
	Device string `json:"device,omitempty"`
	// CardAuthentication is "verified" when a PIV card proved at insertion
	// that it holds its card-authentication key (slot 9E), "failed" when it
	// did not (it gets no PIN), empty when it has no such key.
	CardAuthentication string   `json:"card_authentication,omitempty"`
	PIN                PINState `json:"pin"`
	// FIDO describes a security key (kind security-key) as it describes
	// itself (authenticatorGetInfo).
	FIDO *FIDOInfo `json:"fido,omitempty"`
	Keys []Key     `json:"keys"`
}

// FIDOInfo is what a FIDO2 security key says about itself (CTAP 2.1 §6.4).
type FIDOInfo struct {
	// AAGUID is the model identifier in hex.
	AAGUID   string   `json:"aaguid"`
	Versions []string `json:"versions"`
	// Options are the key's option flags: clientPin (a PIN is set), rk
	// (resident keys), uv (built-in user verification), up, plat.
	Options map[string]bool `json:"options"`
	// PINSet reports whether the key has a PIN.
	PINSet bool `json:"pin_set"`
}

// PINState is what is known of an authenticator's PIN. RetriesLeft is null
// when the authenticator does not tell without a verification attempt.
type PINState struct {
	RetriesLeft hwerr.Tries `json:"retries_left"`
	Blocked     bool        `json:"blocked"`
	Verified    bool        `json:"verified"`
}

// Key is one key of an authenticator: ID is the PIV slot ("9a"), a PKCS#11
// CKA_ID in hex, or "9a" for a virtual card's single key.
type Key struct {
	ID          string `json:"id"`
	Algorithm   string `json:"algorithm"`
	PublicKey   string `json:"public_key"`
	Certificate string `json:"certificate,omitempty"`
}

// AuthenticatorsResponse is the answer of GET /v1/authenticators.
type AuthenticatorsResponse struct {
	Authenticators []Authenticator `json:"authenticators"`
}

// PINVerifyRequest is the body of POST /v1/authenticators/{id}/pin/verify.
type PINVerifyRequest struct {
	PIN Secret `json:"pin"`
}

// Wipe zeroes the secrets of the request.
func (r *PINVerifyRequest) Wipe() { r.PIN.Wipe() }

// PINChangeRequest is the body of POST /v1/authenticators/{id}/pin/change.
type PINChangeRequest struct {
	PIN    Secret `json:"pin"`
	NewPIN Secret `json:"new_pin"`
}

// Wipe zeroes the secrets of the request.
func (r *PINChangeRequest) Wipe() { r.PIN.Wipe(); r.NewPIN.Wipe() }

// PINUnblockRequest is the body of POST /v1/authenticators/{id}/pin/unblock.
type PINUnblockRequest struct {
	PUK    Secret `json:"puk"`
	NewPIN Secret `json:"new_pin"`
}

// Wipe zeroes the secrets of the request.
func (r *PINUnblockRequest) Wipe() { r.PUK.Wipe(); r.NewPIN.Wipe() }

// PINSetRequest is the body of POST /v1/authenticators/{id}/pin/set: the
// first PIN of a security key that has none (CTAP 2.1 §6.5.5.5, setPIN).
type PINSetRequest struct {
	NewPIN Secret `json:"new_pin"`
}

// Wipe zeroes the secrets of the request.
func (r *PINSetRequest) Wipe() { r.NewPIN.Wipe() }

// PINResult is the answer of the PIN routes.
type PINResult struct {
	RetriesLeft hwerr.Tries `json:"retries_left"`
	Blocked     bool        `json:"blocked"`
	Verified    bool        `json:"verified"`
}

// SignRequest is the body of POST /v1/authenticators/{id}/sign. Algorithm
// is one of the names of device.SignAlgorithms, which the daemon parses at
// its edge; Digest is the hash to sign (base64 in JSON); PIN may be empty
// when it was verified before.
type SignRequest struct {
	Key       string `json:"key"`
	Algorithm string `json:"algorithm"`
	Digest    []byte `json:"digest"`
	PIN       Secret `json:"pin,omitempty"`
}

// Wipe zeroes the secrets of the request.
func (r *SignRequest) Wipe() { r.PIN.Wipe() }

// SignResponse is the answer of the sign route; ECDSA signatures are ASN.1
// DER.
type SignResponse struct {
	Signature []byte `json:"signature"`
}

// MakeCredentialRequest is the body of POST /v1/authenticators/{id}/credentials
// (FIDO2 authenticatorMakeCredential, CTAP 2.1 §6.1).
type MakeCredentialRequest struct {
	RPID           string `json:"rp_id"`
	UserID         []byte `json:"user_id"`
	UserName       string `json:"user_name"`
	ClientDataHash []byte `json:"client_data_hash"`
	Algorithm      string `json:"algorithm,omitempty"`
	ResidentKey    bool   `json:"resident_key,omitempty"`
	PIN            Secret `json:"pin,omitempty"`
}

// Wipe zeroes the secrets of the request.
func (r *MakeCredentialRequest) Wipe() { r.PIN.Wipe() }

// Credential is the answer of the credentials route.
type Credential struct {
	CredentialID []byte `json:"credential_id"`
	PublicKey    string `json:"public_key"`
	AuthData     []byte `json:"auth_data,omitempty"`
	Attestation  []byte `json:"attestation,omitempty"`
}

// GetAssertionRequest is the body of POST /v1/authenticators/{id}/assertions
// (FIDO2 authenticatorGetAssertion, CTAP 2.1 §6.2).
type GetAssertionRequest struct {
	RPID           string   `json:"rp_id"`
	ClientDataHash []byte   `json:"client_data_hash"`
	CredentialIDs  [][]byte `json:"credential_ids,omitempty"`
	UserPresence   bool     `json:"user_presence"`
	PIN            Secret   `json:"pin,omitempty"`
}

// Wipe zeroes the secrets of the request.
func (r *GetAssertionRequest) Wipe() { r.PIN.Wipe() }

// Assertion is the answer of the assertions route.
type Assertion struct {
	CredentialID []byte `json:"credential_id"`
	AuthData     []byte `json:"auth_data"`
	Signature    []byte `json:"signature"`
	UserID       []byte `json:"user_id,omitempty"`
}

// VirtualSmartcardCreateRequest is the body of POST /v1/virtual-smartcards.
// Algorithm is one of the names of device.VirtualCardAlgorithms, the first
// when empty.
type VirtualSmartcardCreateRequest struct {
	Label     string `json:"label"`
	PIN       Secret `json:"pin"`
	PUK       Secret `json:"puk"`
	Algorithm string `json:"algorithm,omitempty"`
	// Attest asks for a TPM2_Certify statement over the new key (TPM 2.0
	// Part 3 §18.2), returned in VirtualSmartcard.Attestation.
	Attest bool `json:"attest,omitempty"`
	// Nonce is qualifying data from IT that the statement must include, so
	// it cannot be replayed (at most 64 bytes).
	Nonce []byte `json:"nonce,omitempty"`
	// AdminKey is IT's admin key (PEM, ECDSA P-256 public key): responses
	// signed with it to the card's challenges unblock the PIN
	// (POST /v1/virtual-smartcards/{id}/unblock). Optional.
	AdminKey string `json:"admin_key,omitempty"`
}

// Wipe zeroes the secrets of the request.
func (r *VirtualSmartcardCreateRequest) Wipe() { r.PIN.Wipe(); r.PUK.Wipe() }

// VirtualSmartcard is a TPM virtual smart card provisioned on this device.
type VirtualSmartcard struct {
	ID          string `json:"id"`
	Label       string `json:"label"`
	Algorithm   string `json:"algorithm"`
	PublicKey   string `json:"public_key"`
	Certificate string `json:"certificate,omitempty"`
	// Device identifies the TPM that holds the key (e.g. a hash of its
	// endorsement key).
	Device string `json:"device,omitempty"`
	// PINRetriesLeft is the card's own PIN counter (0 means blocked); the
	// TPM always reports it.
	PINRetriesLeft hwerr.Tries `json:"pin_retries_left"`
	// Attestation is present in the answer to a create with attest.
	Attestation *KeyAttestation `json:"attestation,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
}

// KeyAttestation proves that a virtual card's key lives in this device's
// TPM: a TPM2_Certify statement (TPMS_ATTEST) over the key's public area,
// signed by a TPM attestation key. IT verifies it with the attestation key
// it trusts for the device (hwauthctl vsc create --attest prints it).
type KeyAttestation struct {
	// AKPublic is the attestation key's public key (PEM).
	AKPublic string `json:"ak_public"`
	// KeyPublic is the certified key's TPMT_PUBLIC area.
	KeyPublic []byte `json:"key_public"`
	// CertifyInfo is the signed TPMS_ATTEST structure.
	CertifyInfo []byte `json:"certify_info"`
	// Signature is the attestation key's ECDSA signature (ASN.1 DER) over
	// CertifyInfo.
	Signature []byte `json:"signature"`
	// Nonce is the qualifying data the statement includes.
	Nonce []byte `json:"nonce,omitempty"`
}

// VirtualSmartcardsResponse lists virtual smart cards.
type VirtualSmartcardsResponse struct {
	VirtualSmartcards []VirtualSmartcard `json:"virtual_smartcards"`
}

// CSRRequest is the body of POST /v1/virtual-smartcards/{id}/csr. PIN
// authorizes the card's key in the TPM for the signature over the request.
type CSRRequest struct {
	Subject  string   `json:"subject"`
	DNSNames []string `json:"dns_names,omitempty"`
	Emails   []string `json:"emails,omitempty"`
	UPN      string   `json:"upn,omitempty"`
	PIN      Secret   `json:"pin,omitempty"`
}

// Wipe zeroes the secrets of the request.
func (r *CSRRequest) Wipe() { r.PIN.Wipe() }

// CSRResponse carries a PEM certificate signing request signed in the TPM.
type CSRResponse struct {
	CSR string `json:"csr"`
}

// VSCUnblockRequest is the body of POST /v1/virtual-smartcards/{id}/unblock:
// empty, it asks for a challenge; with the admin key's responses to it and
// a new PIN, it unblocks the card.
type VSCUnblockRequest struct {
	Responses [][]byte `json:"responses,omitempty"`
	NewPIN    Secret   `json:"new_pin,omitempty"`
}

// Wipe zeroes the secrets of the request.
func (r *VSCUnblockRequest) Wipe() { r.NewPIN.Wipe() }

// VSCUnblockChallenge is the card's challenge: two nonces, each to be
// signed with the admin key (ECDSA P-256, SHA-256 over the nonce and four
// zero bytes; adminkey.Sign in tpm/adminkey) before ExpiresAt.
type VSCUnblockChallenge struct {
	Challenges [][]byte  `json:"challenges"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// VSCAttestationRequest is the answer of POST
// /v1/virtual-smartcards/{id}/attestation, the first step of the
// attestation exchange (device.AttestationRequest, which tpm/attest's
// VerifyRequest checks): the TPM's endorsement key certificate (DER) and
// public area, the attestation key's public area, the card key's public
// area, and the attestation key's TPM2_Certify statement over it with its
// signature.
type VSCAttestationRequest struct {
	EKCertificate []byte `json:"ek_certificate"`
	EKPublic      []byte `json:"ek_public"`
	AKPublic      []byte `json:"ak_public"`
	KeyPublic     []byte `json:"key_public"`
	CertifyInfo   []byte `json:"certify_info"`
	Signature     []byte `json:"signature"`
}

// VSCAttestationChallenge is the verifier's TPM2_MakeCredential output,
// the body of POST /v1/virtual-smartcards/{id}/attestation/activate.
type VSCAttestationChallenge struct {
	CredentialBlob  []byte `json:"credential_blob"`
	EncryptedSecret []byte `json:"encrypted_secret"`
}

// VSCAttestationAnswer is the secret the TPM found in the challenge, for the
// verifier to compare with its own.
type VSCAttestationAnswer struct {
	Answer []byte `json:"answer"`
}

// CertificateImport is the body of PUT /v1/virtual-smartcards/{id}/certificate.
type CertificateImport struct {
	Certificate string `json:"certificate"`
}

// Registration binds a user to an authenticator.
type Registration struct {
	ID            string     `json:"id"`
	User          string     `json:"user"`
	Authenticator string     `json:"authenticator"`
	Kind          string     `json:"kind"`
	Backend       string     `json:"backend,omitempty"`
	Label         string     `json:"label"`
	Default       bool       `json:"default"`
	Device        string     `json:"device,omitempty"`
	PublicKey     string     `json:"public_key,omitempty"`
	Certificate   string     `json:"certificate,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	LastUsedAt    *time.Time `json:"last_used_at,omitempty"`
}

// RegistrationsResponse is the answer of GET /v1/users/{user}/registrations.
type RegistrationsResponse struct {
	User    string `json:"user"`
	Default string `json:"default,omitempty"`
	Limit   int    `json:"limit"`
	// LastAuthenticator is the authenticator the user signed in with last
	// (remembered sign-in information, which sign-in offers first; forget
	// deletes it).
	LastAuthenticator string         `json:"last_authenticator,omitempty"`
	Registrations     []Registration `json:"registrations"`
}

// Requirements is the answer of GET /v1/users/{user}/requirements: what
// the organisation's policy asks the user to register before they may sign
// in, and what is still missing.
type Requirements struct {
	User string `json:"user"`
	// RequiredCount is how many authenticators the policy asks for.
	RequiredCount int `json:"required_count"`
	// RequiredKinds, when not empty: at least one must be of these kinds.
	RequiredKinds []string `json:"required_kinds"`
	// Registered is how many the user has.
	Registered int `json:"registered"`
	// Satisfied is true when nothing is missing.
	Satisfied bool `json:"satisfied"`
	// MissingCount is how many more the user must register.
	MissingCount int `json:"missing_count"`
	// MissingOneOf, when not empty: one of the missing ones must be of
	// one of these kinds.
	MissingOneOf []string `json:"missing_one_of"`
	// Message says it in a sentence for people (empty when satisfied).
	Message string `json:"message,omitempty"`
}

// RegisterRequest is the body of POST /v1/users/{user}/registrations.
type RegisterRequest struct {
	Authenticator string `json:"authenticator"`
	PIN           Secret `json:"pin"`
	Label         string `json:"label,omitempty"`
}

// Wipe zeroes the secrets of the request.
func (r *RegisterRequest) Wipe() { r.PIN.Wipe() }

// RegistrationRemoved is the answer of DELETE
// /v1/users/{user}/registrations/{rid}: Default is the user's default after
// the removal (another registration when the removed one was the default;
// empty when none is left).
type RegistrationRemoved struct {
	Removed string `json:"removed"`
	Default string `json:"default"`
}

// SetDefaultRequest is the body of PUT /v1/users/{user}/default.
type SetDefaultRequest struct {
	Registration string `json:"registration"`
}

// Session is a sign-in session.
type Session struct {
	ID            string    `json:"id"`
	User          string    `json:"user"`
	Authenticator string    `json:"authenticator"`
	StartedAt     time.Time `json:"started_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	// Pending is true until the session is opened (POST …/open); a pending
	// session ends after signin.open_timeout (reason not-opened).
	Pending bool `json:"pending,omitempty"`
	// LoginSession is the systemd-logind session the sign-in opened, when
	// known: its id (XDG_SESSION_ID), or LoginPID, a process in it.
	LoginSession string `json:"login_session,omitempty"`
	LoginPID     int    `json:"login_pid,omitempty"`
}

// OpenSessionRequest is the body of POST /v1/sessions/{id}/open: the login
// session the sign-in opened, by id (XDG_SESSION_ID) or by a process in it
// (the PAM application's pid), so that the removal policy can lock or end
// it.
type OpenSessionRequest struct {
	LoginSession string `json:"login_session,omitempty"`
	PID          int    `json:"pid,omitempty"`
}

// SessionsResponse is the answer of GET /v1/sessions.
type SessionsResponse struct {
	Sessions []Session `json:"sessions"`
}

// SignInRequest is the body of POST /v1/sign-in; Authenticator is optional
// (the user's default or the only present one).
type SignInRequest struct {
	User          string `json:"user"`
	PIN           Secret `json:"pin"`
	Authenticator string `json:"authenticator,omitempty"`
	// Pending asks for a session that lasts only until it is opened (POST
	// /v1/sessions/{id}/open) or signin.open_timeout passes: a PAM stack
	// that only authenticates (a screen locker) leaves none behind.
	Pending bool `json:"pending,omitempty"`
}

// Wipe zeroes the secrets of the request.
func (r *SignInRequest) Wipe() { r.PIN.Wipe() }

// SignInResponse is the answer of POST /v1/sign-in.
type SignInResponse struct {
	Session Session `json:"session"`
}

// ForgetResponse is the answer of POST /v1/users/{user}/forget.
type ForgetResponse struct {
	User string `json:"user"`
	// Forgotten names what existed and was deleted: ForgottenLastAuthenticator,
	// ForgottenCachedPIN; empty when nothing was remembered.
	Forgotten []string `json:"forgotten"`
}

// What forget deletes: the remembered sign-in information of a user.
const (
	// ForgottenLastAuthenticator is the authenticator the user signed in
	// with last, which sign-in offers first.
	ForgottenLastAuthenticator = "last_authenticator"
	// ForgottenCachedPIN is a PIN kept in the user's sessions when
	// signin.cache_pin is on.
	ForgottenCachedPIN = "cached_pin"
)

// Identity prefixes of Link.Identity: a certificate's user principal name,
// e-mail address, common name or whole subject DN.
const (
	IdentityUPN     = "upn:"
	IdentityEmail   = "email:"
	IdentityCN      = "cn:"
	IdentitySubject = "subject:"
)

// Link maps an identity from a card certificate ("upn:alice@example.com",
// "email:…", "cn:…", "subject:…") to a local account (R11).
type Link struct {
	Identity  string    `json:"identity"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Stale: the link was made for an earlier account of the same name
	// (another uid); it is not used to sign in. Remove it, or link again.
	Stale bool `json:"stale,omitempty"`
}

// LinkRequest is the body of POST /v1/users/{user}/links.
type LinkRequest struct {
	Identity string `json:"identity"`
}

// LinksResponse is the answer of GET /v1/users/{user}/links.
type LinksResponse struct {
	User  string `json:"user"`
	Links []Link `json:"links"`
	// Linking is false when account linking is off (no "link" rule in
	// signin.mapping): the links are kept but not used to sign in.
	Linking bool `json:"linking"`
}
