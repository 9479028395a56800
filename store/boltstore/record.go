package boltstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hwauthd/hwauthd/store"
)

// record is a registration as stored in the regs bucket, JSON-encoded.
// Default is not stored here (the defaults bucket says it); Seq orders
// registrations created in the same microsecond.
type record struct {
	ID              string    `json:"id"`
	User            string    `json:"user"`
	AuthenticatorID string    `json:"authenticator_id"`
	Kind            string    `json:"kind,omitempty"`
	Backend         string    `json:"backend,omitempty"`
	Label           string    `json:"label,omitempty"`
	KeyID           string    `json:"key_id,omitempty"`
	PublicKey       []byte    `json:"public_key,omitempty"`
	Certificate     []byte    `json:"certificate,omitempty"`
	CredentialID    []byte    `json:"credential_id,omitempty"`
	SignCount       uint32    `json:"sign_count,omitempty"`
	DeviceID        string    `json:"device_id,omitempty"`
	RegisteredBy    string    `json:"registered_by,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	LastUsedAt      time.Time `json:"last_used_at,omitzero"`
	Seq             uint64    `json:"seq"`
}

// encodeRegistration encodes r with its sequence number for the regs bucket.
func encodeRegistration(r store.Registration, seq uint64) ([]byte, error) {
	return json.Marshal(record{
		ID: r.ID, User: r.User, AuthenticatorID: r.AuthenticatorID, Kind: r.Kind,
		Backend: r.Backend, Label: r.Label, KeyID: r.KeyID, PublicKey: r.PublicKey,
		Certificate: r.Certificate, CredentialID: r.CredentialID, SignCount: r.SignCount,
		DeviceID: r.DeviceID, RegisteredBy: r.RegisteredBy, CreatedAt: r.CreatedAt,
		LastUsedAt: r.LastUsedAt, Seq: seq,
	})
}

// decodeRegistration decodes a record read from the file. Bytes on disk are
// outside input: anything malformed or missing a required field is
// store.ErrCorrupt.
func decodeRegistration(b []byte) (store.Registration, uint64, error) {
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return store.Registration{}, 0, fmt.Errorf("%w: registration record: %w", store.ErrCorrupt, err)
	}
	if err := checkRecord(rec); err != nil {
		return store.Registration{}, 0, fmt.Errorf("%w: registration record: %w", store.ErrCorrupt, err)
	}
	return store.Registration{
		ID: rec.ID, User: rec.User, AuthenticatorID: rec.AuthenticatorID, Kind: rec.Kind,
		Backend: rec.Backend, Label: rec.Label, KeyID: rec.KeyID, PublicKey: rec.PublicKey,
		Certificate: rec.Certificate, CredentialID: rec.CredentialID, SignCount: rec.SignCount,
		DeviceID: rec.DeviceID, RegisteredBy: rec.RegisteredBy,
		CreatedAt: store.Timestamp(rec.CreatedAt), LastUsedAt: store.Timestamp(rec.LastUsedAt),
	}, rec.Seq, nil
}

// checkRecord checks the fields every stored registration has.
func checkRecord(rec record) error {
	if rec.ID == "" {
		return errors.New("empty id")
	}
	if err := store.CheckName("user", rec.User); err != nil {
		return err
	}
	if err := store.CheckName("authenticator id", rec.AuthenticatorID); err != nil {
		return err
	}
	if err := store.CheckName("id", rec.ID); err != nil {
		return err
	}
	if rec.KeyID != "" {
		if err := store.CheckName("key id", rec.KeyID); err != nil {
			return err
		}
	}
	if rec.CreatedAt.IsZero() {
		return errors.New("no creation time")
	}
	return nil
}

// link is an identity link as stored in the links bucket.
type link struct {
	User      string    `json:"user"`
	UID       *uint32   `json:"uid,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// decodeLink decodes a link record read from the file.
func decodeLink(identity string, b []byte) (store.Link, error) {
	var l link
	if err := json.Unmarshal(b, &l); err != nil {
		return store.Link{}, fmt.Errorf("%w: link record: %w", store.ErrCorrupt, err)
	}
	if err := store.CheckName("user", l.User); err != nil {
		return store.Link{}, fmt.Errorf("%w: link record: %w", store.ErrCorrupt, err)
	}
	return store.Link{Identity: identity, User: l.User, UID: l.UID, CreatedBy: l.CreatedBy, CreatedAt: store.Timestamp(l.CreatedAt)}, nil
}
