package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hwauthd/hwauthd/store"
)

// AddLink implements store.Store.
func (s *Store) AddLink(ctx context.Context, user string, uid uint32, identity, createdBy string) error {
	if err := store.CheckLink(user, identity); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		links := tx.Bucket(bucketLinks)
		if v := links.Get([]byte(identity)); v != nil {
			l, err := decodeLink(identity, v)
			if err != nil {
				return err
			}
			if l.User != user {
				return store.ErrAlreadyLinked
			}
			if l.UID != nil && *l.UID == uid {
				return nil
			}
			// Linked again for the account as it is now (a stale or older
			// link): it takes this uid.
		}
		b, err := json.Marshal(link{User: user, UID: &uid, CreatedBy: createdBy, CreatedAt: store.Timestamp(time.Now())})
		if err != nil {
			return err
		}
		if err := links.Put([]byte(identity), b); err != nil {
			return err
		}
		return tx.Bucket(bucketUserLinks).Put(key(user, identity), present)
	})
	if err != nil {
		return fmt.Errorf("link identity: %w", err)
	}
	return nil
}

// RemoveLink implements store.Store.
func (s *Store) RemoveLink(ctx context.Context, user, identity string) error {
	if store.CheckLink(user, identity) != nil {
		return fmt.Errorf("unlink identity: %w", store.ErrNotFound)
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUserLinks).Get(key(user, identity)) == nil {
			return store.ErrNotFound
		}
		if err := tx.Bucket(bucketUserLinks).Delete(key(user, identity)); err != nil {
			return err
		}
		return tx.Bucket(bucketLinks).Delete([]byte(identity))
	})
	if err != nil {
		return fmt.Errorf("unlink identity: %w", err)
	}
	return nil
}

// Links implements store.Store; the userlinks index keeps them sorted by
// identity.
func (s *Store) Links(ctx context.Context, user string) ([]store.Link, error) {
	var out []store.Link
	err := s.view(ctx, func(tx *bolt.Tx) error {
		p := prefix(user)
		c := tx.Bucket(bucketUserLinks).Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			identity := string(k[len(p):])
			l, err := decodeLink(identity, tx.Bucket(bucketLinks).Get([]byte(identity)))
			if err != nil {
				return err
			}
			out = append(out, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	return out, nil
}

// LinkOf implements store.Store.
func (s *Store) LinkOf(ctx context.Context, identity string) (store.Link, error) {
	var l store.Link
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLinks).Get([]byte(identity))
		if v == nil {
			return store.ErrNotFound
		}
		var err error
		l, err = decodeLink(identity, v)
		return err
	})
	if err != nil {
		return store.Link{}, fmt.Errorf("link of identity: %w", err)
	}
	return l, nil
}

// Remember implements store.Store.
func (s *Store) Remember(ctx context.Context, user string, k, value string) error {
	if err := store.CheckName("user", user); err != nil {
		return err
	}
	if err := store.CheckName("key", k); err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRemember).Put(key(user, k), []byte(value))
	})
}

// Recall implements store.Store.
func (s *Store) Recall(ctx context.Context, user string) (map[string]string, error) {
	out := map[string]string{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		p := prefix(user)
		c := tx.Bucket(bucketRemember).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out[string(k[len(p):])] = string(v)
		}
		return nil
	})
	return out, err
}

// Forget implements store.Store.
func (s *Store) Forget(ctx context.Context, user string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		p := prefix(user)
		c := tx.Bucket(bucketRemember).Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Seek(p) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}
