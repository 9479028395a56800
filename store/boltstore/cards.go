package boltstore

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/hwauthd/hwauthd/store"
)

// PutCard implements store.DeviceState.
func (s *Store) PutCard(ctx context.Context, id string, blob []byte) error {
	return s.UpdateCard(ctx, id, func([]byte) ([]byte, error) { return blob, nil })
}

// Card implements store.DeviceState.
func (s *Store) Card(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCards).Get([]byte(id))
		if v == nil {
			return store.ErrNotFound
		}
		out = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("virtual card %s: %w", id, err)
	}
	return out, nil
}

// Cards implements store.DeviceState.
func (s *Store) Cards(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCards).ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	return out, err
}

// DeleteCard implements store.DeviceState.
func (s *Store) DeleteCard(ctx context.Context, id string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCards)
		if b.Get([]byte(id)) == nil {
			return store.ErrNotFound
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete virtual card %s: %w", id, err)
	}
	return nil
}

// UpdateCard implements store.DeviceState: fn runs inside the write
// transaction, so concurrent updates of one card never interleave.
func (s *Store) UpdateCard(ctx context.Context, id string, fn func(old []byte) ([]byte, error)) error {
	if err := store.CheckName("card id", id); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCards)
		old := bytes.Clone(b.Get([]byte(id)))
		blob, err := fn(old)
		if err != nil {
			return err
		}
		if blob == nil {
			return b.Delete([]byte(id))
		}
		return b.Put([]byte(id), blob)
	})
	if err != nil {
		return fmt.Errorf("update virtual card %s: %w", id, err)
	}
	return nil
}

// ForgetCard implements store.CardForgetter: the card's record and every
// registration of its authenticator go in one transaction, each user's
// default moving as in RemoveRegistration.
func (s *Store) ForgetCard(ctx context.Context, cardID, authenticatorID string) ([]store.Removal, error) {
	var out []store.Removal
	err := s.update(ctx, func(tx *bolt.Tx) error {
		out = nil
		found, err := s.authEntries(tx, authenticatorID)
		if err != nil {
			return err
		}
		for _, f := range found {
			user := f.reg.User
			if err := tx.Bucket(bucketRegs).Delete(key(user, f.reg.ID)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketByAuth).Delete(f.indexKey); err != nil {
				return err
			}
			// The default as it is now: an earlier removal may have moved it.
			wasDefault := string(tx.Bucket(bucketDefaults).Get([]byte(user))) == f.reg.ID
			def, err := s.moveDefault(tx, user, wasDefault)
			if err != nil {
				return err
			}
			out = append(out, store.Removal{Registration: f.reg, Default: def})
		}
		return tx.Bucket(bucketCards).Delete([]byte(cardID))
	})
	if err != nil {
		return nil, fmt.Errorf("forget virtual card %s: %w", cardID, err)
	}
	return out, nil
}
