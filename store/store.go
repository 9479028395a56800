// Package store defines the registry of authenticators per user (R4, R5, R7),
// identity links (R11), remembered sign-in information (R8) and the
// device-local state of virtual smart cards, as interfaces with the types and
// error classes they share. The backends live in the subpackages boltstore
// (the embedded default, one bbolt file) and pgstore (PostgreSQL, shared by a
// fleet so the limit of five holds across every device of a user); storetest
// holds the conformance suite both pass.
package store

import (
	"context"
	"errors"
	"time"
)

// Error classes returned (wrapped) by every backend. Test with errors.Is.
var (
	// ErrNotFound means the registration, link or card does not exist for the
	// user it was asked for.
	ErrNotFound = errors.New("not found")
	// ErrLimitReached means the user already has as many registered
	// authenticators as the limit allows (R5).
	ErrLimitReached = errors.New("registration limit reached")
	// ErrAlreadyRegistered means this user has already registered this key of
	// this authenticator.
	ErrAlreadyRegistered = errors.New("authenticator already registered to this user")
	// ErrRegisteredToOther means another user has registered this key of this
	// authenticator and sharing was not allowed.
	ErrRegisteredToOther = errors.New("authenticator registered to another user")
	// ErrAlreadyLinked means the identity is linked to another local user.
	ErrAlreadyLinked = errors.New("identity already linked to another user")
	// ErrCounterRegressed means a FIDO2 signature counter did not increase,
	// a sign that the credential may have been cloned.
	ErrCounterRegressed = errors.New("signature counter did not increase")
	// ErrCorrupt means the stored data is unreadable or inconsistent; the
	// store never replaces it silently.
	ErrCorrupt = errors.New("store is corrupt")
	// ErrSchemaTooNew means the stored schema version is newer than this
	// program knows; it refuses to touch the data rather than guess.
	ErrSchemaTooNew = errors.New("store schema is newer than this hwauthd supports")
	// ErrInvalid means an argument cannot be stored (empty user, NUL byte in
	// a name, negative limit).
	ErrInvalid = errors.New("invalid store argument")
)

// Authenticator kinds, as in the socket API.
const (
	KindSmartcard        = "smartcard"
	KindVirtualSmartcard = "virtual-smartcard"
	KindSecurityKey      = "security-key"
)

// Backends, as in the socket API.
const (
	BackendPIV    = "piv"
	BackendPKCS11 = "pkcs11"
	BackendTPM    = "tpm"
	BackendFIDO2  = "fido2"
)

// Registration binds one key of one authenticator to a local user (R4).
type Registration struct {
	// ID is random and URL-safe, assigned by the store.
	ID string
	// User is the local account name.
	User string
	// AuthenticatorID is the stable authenticator id from the daemon
	// ("piv-<guid>", "vsc-<id>", "fido-<aaguid…>").
	AuthenticatorID string
	// Kind is one of KindSmartcard, KindVirtualSmartcard, KindSecurityKey.
	Kind string
	// Backend is one of BackendPIV, BackendPKCS11, BackendTPM, BackendFIDO2.
	Backend string
	// Label is a name the person or IT chose.
	Label string
	// KeyID is the slot or key id used for sign-in ("9a") or the FIDO2
	// credential id (base64).
	KeyID string
	// PublicKey is the PKIX DER of the key proven at registration.
	PublicKey []byte
	// Certificate is the DER certificate, if any.
	Certificate []byte
	// CredentialID is the FIDO2 credential id, if any.
	CredentialID []byte
	// SignCount is the FIDO2 signature counter last seen.
	SignCount uint32
	// DeviceID is, for virtual cards, the identity of the device (TPM) that
	// holds the key; empty otherwise.
	DeviceID string
	// RegisteredBy is the account name (or "uid:N") of the caller who
	// registered it.
	RegisteredBy string
	// CreatedAt is set by the store when zero; stored with microsecond
	// precision.
	CreatedAt time.Time
	// LastUsedAt is zero until the first sign-in.
	LastUsedAt time.Time
	// Default is filled on reads: whether this is the user's default.
	Default bool
}

// Link links an identity from a certificate (R11) to a local user.
type Link struct {
	// Identity is a typed identity string: "upn:alice@example.com",
	// "email:alice@example.com", "cn:Alice".
	Identity string
	// User is the local account name.
	User string
	// UID is the account's uid when it was linked: the link belongs to that
	// account, not to a later one created under the same name. Nil for
	// links made before uids were recorded, which match by name only.
	UID *uint32
	// CreatedBy is the account name (or "uid:N") of the caller who linked it.
	CreatedBy string
	// CreatedAt is when the link was made.
	CreatedAt time.Time
}

// Store is the registry of authenticators, identity links and remembered
// sign-in information. Implementations are safe for concurrent use.
type Store interface {
	// AddRegistration inserts r for r.User atomically and returns it with ID,
	// CreatedAt and Default filled. It refuses with ErrLimitReached when the
	// user already has limit registrations (limit 0 allows none),
	// ErrAlreadyRegistered when this user has this AuthenticatorID+KeyID
	// already, and ErrRegisteredToOther when another user has it and
	// allowShared is false. The first registration of a user becomes the
	// default. The checks and the insert cannot race, in one process or
	// (PostgreSQL) across devices.
	AddRegistration(ctx context.Context, r Registration, limit int, allowShared bool) (Registration, error)
	// Registrations lists the user's registrations sorted by CreatedAt
	// (oldest first), with Default marked; none is an empty list.
	Registrations(ctx context.Context, user string) ([]Registration, error)
	// Registration returns one of the user's registrations, or ErrNotFound
	// (also when id belongs to another user).
	Registration(ctx context.Context, user, id string) (Registration, error)
	// FindByAuthenticator lists every registration of the authenticator, for
	// every user and key, oldest first.
	FindByAuthenticator(ctx context.Context, authenticatorID string) ([]Registration, error)
	// RemoveRegistration deletes one of the user's registrations. When it
	// was the default, the default moves to the oldest remaining
	// registration (R7). It returns the user's default afterwards ("" when
	// none is left), or ErrNotFound.
	RemoveRegistration(ctx context.Context, user, id string) (newDefault string, err error)
	// SetDefault makes one of the user's registrations the default, or
	// returns ErrNotFound.
	SetDefault(ctx context.Context, user, id string) error
	// MarkUsed records a sign-in at time at. For FIDO2, signCount is the
	// counter the authenticator reported: when it and the stored counter are
	// both non-zero it must increase, or ErrCounterRegressed is returned and
	// nothing changes. A zero signCount leaves the stored counter as it is.
	MarkUsed(ctx context.Context, user, id string, at time.Time, signCount uint32) error
	// CountRegistrations returns how many registrations the user has.
	CountRegistrations(ctx context.Context, user string) (int, error)
	// AddLink links identity to user, whose uid is uid (R11). Linking it
	// again to the same user is not an error and records uid (an account
	// created again takes the link back); linking it to another user is
	// ErrAlreadyLinked.
	AddLink(ctx context.Context, user string, uid uint32, identity, createdBy string) error
	// RemoveLink removes the link of identity to user, or returns ErrNotFound.
	RemoveLink(ctx context.Context, user, identity string) error
	// Links lists the user's identity links sorted by identity.
	Links(ctx context.Context, user string) ([]Link, error)
	// LinkOf returns the link of an identity, or ErrNotFound.
	LinkOf(ctx context.Context, identity string) (Link, error)
	// Remember stores one item of remembered sign-in information for the
	// user (R8), such as the last authenticator used. It must not hold
	// secrets.
	Remember(ctx context.Context, user string, key, value string) error
	// Recall returns everything remembered for the user (empty, not nil,
	// when nothing is).
	Recall(ctx context.Context, user string) (map[string]string, error)
	// Forget deletes everything remembered for the user ("Delete my sign-in
	// information", R8); registrations and links stay.
	Forget(ctx context.Context, user string) error
	// Close releases the store.
	Close() error
}

// DeviceState holds data that belongs to this device and never goes to a
// fleet store: virtual smart card metadata and their TPM-wrapped key blobs
// (R3). Only boltstore implements it; with the PostgreSQL registry the daemon
// still opens the local bbolt file for DeviceState.
type DeviceState interface {
	// PutCard stores (or replaces) the blob of card id.
	PutCard(ctx context.Context, id string, blob []byte) error
	// Card returns the blob of card id, or ErrNotFound.
	Card(ctx context.Context, id string) ([]byte, error)
	// Cards returns every card's blob by id.
	Cards(ctx context.Context) (map[string][]byte, error)
	// DeleteCard removes card id, or returns ErrNotFound.
	DeleteCard(ctx context.Context, id string) error
	// UpdateCard replaces the blob of card id with fn(old) in one
	// transaction; old is nil when the card does not exist, and a nil result
	// deletes the card. An error from fn aborts the update and is returned.
	UpdateCard(ctx context.Context, id string, fn func(old []byte) ([]byte, error)) error
}

// CheckLink validates the names of an identity link.
func CheckLink(user, identity string) error {
	if err := CheckName("user", user); err != nil {
		return err
	}
	return CheckName("identity", identity)
}
