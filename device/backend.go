// Package device is the contract between the daemon and its hardware
// backends (PC/SC smart cards, TPM virtual cards, FIDO2 keys, PKCS#11
// tokens). It holds only interfaces and plain types, so the daemon core builds
// and tests without cgo while each backend lives in its own leaf package.
//
// Its types are Go's and the hardware's, not the API's (piv-go's KeyInfo is
// the model): a device reports each key as a crypto.PublicKey with its
// *x509.Certificate parsed once, a typed KeyAlgorithm, its PIN's tries as
// one hwerr.Tries, and signs with a SignAlgorithm parsed at the API's edge.
// The daemon alone renders them as JSON and PEM; no backend imports ipc.
//
// A backend discovers devices and reports them to its Host; the daemon owns
// the list of present authenticators, the events and the API. Each Device
// serializes access to its hardware itself (one owner per device) and returns
// errors wrapped in the classes of package hwerr.
package device

import (
	"context"
	"sync"
)

// Backend discovers authenticators of one kind and keeps its Host informed.
type Backend interface {
	// Name is the backend's key in /v1/status ("pcsc", "tpm", "fido").
	Name() string
	// Run discovers devices and reports them to host until ctx ends. It
	// returns nil when ctx ends and an error only when the backend cannot
	// work at all; a service that comes and goes is reported through Status.
	Run(ctx context.Context, host Host) error
	// Status describes the backend's state for /v1/status.
	Status() Status
}

// IDPrefixer is implemented by backends whose authenticator ids share a
// prefix ("piv-"), so that a request for one of their authenticators while
// the backend is down answers backend_unavailable rather than not_found.
type IDPrefixer interface {
	IDPrefix() string
}

// Host receives what a backend finds. Its methods are safe for concurrent use
// and never block on clients.
type Host interface {
	// Attach adds a present device, replacing one with the same ID.
	Attach(d Device)
	// Detach removes a device that is gone.
	Detach(id string)
	// SetReader records a reader and its card's presence; a reader seen for
	// the first time is announced as reader-added.
	SetReader(r Reader)
	// RemoveReader forgets a reader (reader-removed).
	RemoveReader(name string)
	// Notify tells of an event that changes no state the host keeps, such
	// as a card that was inserted but cannot be used.
	Notify(e Event)
}

// Device is one present authenticator.
type Device interface {
	// Info describes the device, with the PIN state last seen.
	Info() Info
	// PINState reads the PIN's retry counter without spending a try.
	PINState(ctx context.Context) (PINState, error)
	// VerifyPIN checks pin on the device. The device does not keep the
	// security status afterwards.
	VerifyPIN(ctx context.Context, pin []byte) error
	// ChangePIN replaces the PIN.
	ChangePIN(ctx context.Context, oldPIN, newPIN []byte) error
	// UnblockPIN resets the PIN's retry counter with the PUK and sets newPIN.
	UnblockPIN(ctx context.Context, puk, newPIN []byte) error
	// Sign signs a digest with one of the device's keys.
	Sign(ctx context.Context, req SignRequest) ([]byte, error)
}

// Recoverer is implemented by devices that can unstick an operation that
// stopped answering (the daemon calls Recover in the background once the
// request waiting for it has timed out): Recover makes that operation fail
// soon, e.g. by closing the connection under it, and the backend reconnects.
type Recoverer interface {
	Recover()
}

// SignRequest asks a device for a signature.
type SignRequest struct {
	// Key is the slot or key id ("9a").
	Key string
	// Algorithm is one of SignAlgorithms.
	Algorithm SignAlgorithm
	// Digest is the hash to sign.
	Digest []byte
	// PIN unlocks the key when it needs one; nil when the caller gave none.
	PIN []byte
}

// SecurityKey is a FIDO2 security key: a Device (PIN state, verify and
// change; it has no PUK and signs only through assertions) with what CTAP2
// adds (CTAP 2.1 §6).
type SecurityKey interface {
	Device
	// SetPIN sets the first PIN of a key that has none.
	SetPIN(ctx context.Context, newPIN []byte) error
	// MakeCredential creates a credential (authenticatorMakeCredential); its
	// attestation is verified before it is returned.
	MakeCredential(ctx context.Context, req MakeCredential) (Credential, error)
	// GetAssertion asks for an assertion (authenticatorGetAssertion); the
	// caller verifies it with the credential's stored public key.
	GetAssertion(ctx context.Context, req GetAssertion) (Assertion, error)
}

// MakeCredential asks a security key for a new credential.
type MakeCredential struct {
	RPID           string
	UserID         []byte
	UserName       string
	ClientDataHash []byte
	// Algorithm is "es256" (default) or "eddsa".
	Algorithm   string
	ResidentKey bool
	PIN         []byte
}

// Credential is a credential a security key made.
type Credential struct {
	ID            []byte
	PublicKeyDER  []byte // PKIX
	PublicKeyCOSE []byte
	AuthData      []byte
	Counter       uint32
	// AttestationFormat is the attestation statement's format ("packed",
	// "none").
	AttestationFormat string
}

// GetAssertion asks a security key to sign a client data hash with one of
// the given credentials.
type GetAssertion struct {
	RPID           string
	ClientDataHash []byte
	CredentialIDs  [][]byte
	UserPresence   bool
	PIN            []byte
}

// Assertion is a security key's answer to GetAssertion.
type Assertion struct {
	CredentialID []byte
	AuthData     []byte
	Signature    []byte
	Counter      uint32
}

// Enumerator is implemented by backends that tell when they have looked for
// their devices once since Run began and reported what they found (or found
// that their service cannot be reached). The daemon reports ready and
// answers its first request only then, so that the request that starts it
// sees the cards already present.
type Enumerator interface {
	// Enumerated returns a channel closed after the first enumeration.
	Enumerated() <-chan struct{}
}

// FirstScan is an Enumerator for backends to embed: they call Done when
// their first enumeration is over. Its zero value is ready to use.
type FirstScan struct {
	init sync.Once
	done sync.Once
	ch   chan struct{}
}

func (f *FirstScan) channel() chan struct{} {
	f.init.Do(func() { f.ch = make(chan struct{}) })
	return f.ch
}

// Done marks the first enumeration as over; later calls do nothing.
func (f *FirstScan) Done() { f.done.Do(func() { close(f.channel()) }) }

// Enumerated returns a channel closed by the first Done.
func (f *FirstScan) Enumerated() <-chan struct{} { return f.channel() }

// IsDone reports whether Done has been called.
func (f *FirstScan) IsDone() bool {
	select {
	case <-f.channel():
		return true
	default:
		return false
	}
}
