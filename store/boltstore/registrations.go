package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hwauthd/hwauthd/store"
)

// entry is a registration read from the file with its sequence number.
type entry struct {
	reg store.Registration
	seq uint64
}

// byAge orders entries oldest first: CreatedAt, then insertion order.
func byAge(a, b entry) int {
	if c := a.reg.CreatedAt.Compare(b.reg.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// update runs fn in one write transaction after checking ctx.
func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

// view runs fn in one read transaction after checking ctx.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// AddRegistration implements store.Store. The checks and the insert run in
// one bbolt write transaction, and bbolt serializes writers.
func (s *Store) AddRegistration(ctx context.Context, r store.Registration, limit int, allowShared bool) (store.Registration, error) {
	r, err := store.Prepare(r, limit)
	if err != nil {
		return store.Registration{}, err
	}
	err = s.update(ctx, func(tx *bolt.Tx) error { return add(tx, &r, limit, allowShared) })
	if err != nil {
		return store.Registration{}, fmt.Errorf("add registration: %w", err)
	}
	return r, nil
}

// AddRegistrations adds many registrations in one write transaction (an
// import, or a benchmark's preload), each checked as AddRegistration checks
// it; the first refusal aborts the whole batch.
func (s *Store) AddRegistrations(ctx context.Context, rs []store.Registration, limit int, allowShared bool) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		for _, r := range rs {
			r, err := store.Prepare(r, limit)
			if err != nil {
				return err
			}
			if err := add(tx, &r, limit, allowShared); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add registrations: %w", err)
	}
	return nil
}

// add checks a prepared registration against the authenticator's other
// registrations and the user's limit, and inserts it.
func add(tx *bolt.Tx, r *store.Registration, limit int, allowShared bool) error {
	if err := checkAuthenticator(tx, *r, allowShared); err != nil {
		return err
	}
	if n := countPrefix(tx.Bucket(bucketRegs), prefix(r.User)); n >= limit {
		return store.LimitError(n, limit)
	}
	return insert(tx, r)
}

// checkAuthenticator refuses a key of an authenticator that this user has
// already registered, or that another user has when sharing is not allowed.
func checkAuthenticator(tx *bolt.Tx, r store.Registration, allowShared bool) error {
	p := prefix(r.AuthenticatorID, r.KeyID)
	c := tx.Bucket(bucketByAuth).Cursor()
	other := false
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		parts := split(k[len(p):])
		if len(parts) != 2 {
			return fmt.Errorf("%w: bad index key %q", store.ErrCorrupt, k)
		}
		if parts[0] == r.User {
			return store.ErrAlreadyRegistered
		}
		other = true
	}
	if other && !allowShared {
		return store.ErrRegisteredToOther
	}
	return nil
}

// insert writes a new registration and its index entry, and makes it the
// default when the user has none.
func insert(tx *bolt.Tx, r *store.Registration) error {
	regs := tx.Bucket(bucketRegs)
	seq, err := regs.NextSequence()
	if err != nil {
		return err
	}
	b, err := encodeRegistration(*r, seq)
	if err != nil {
		return err
	}
	if err := regs.Put(key(r.User, r.ID), b); err != nil {
		return err
	}
	if err := tx.Bucket(bucketByAuth).Put(key(r.AuthenticatorID, r.KeyID, r.User, r.ID), present); err != nil {
		return err
	}
	defaults := tx.Bucket(bucketDefaults)
	if defaults.Get([]byte(r.User)) == nil {
		r.Default = true
		return defaults.Put([]byte(r.User), []byte(r.ID))
	}
	return nil
}

// countPrefix counts the keys of b that start with p.
func countPrefix(b *bolt.Bucket, p []byte) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		n++
	}
	return n
}

// userEntries reads the user's registrations oldest first, with Default
// marked.
func (s *Store) userEntries(tx *bolt.Tx, user string) ([]entry, error) {
	var out []entry
	p := prefix(user)
	c := tx.Bucket(bucketRegs).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		r, seq, err := s.decoded.decodeAt(k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, entry{r, seq})
	}
	slices.SortFunc(out, byAge)
	markDefault(tx, out)
	return out, nil
}

// decodeAt decodes the record v stored under key k (through the memo d,
// which may be nil) and checks that it belongs there.
func (d *decodedRecords) decodeAt(k, v []byte) (store.Registration, uint64, error) {
	r, seq, err := d.decode(v)
	if err != nil {
		return r, 0, err
	}
	if !bytes.Equal(k, key(r.User, r.ID)) {
		return r, 0, fmt.Errorf("%w: record %s stored under key %q", store.ErrCorrupt, r.ID, k)
	}
	return r, seq, nil
}

// markDefault sets Default on the entries that are their user's default,
// reading each user's default once for a run of that user's entries.
func markDefault(tx *bolt.Tx, es []entry) {
	defaults := tx.Bucket(bucketDefaults)
	var user, def string
	for i := range es {
		if i == 0 || es[i].reg.User != user {
			user = es[i].reg.User
			def = string(defaults.Get([]byte(user)))
		}
		es[i].reg.Default = es[i].reg.ID == def
	}
}

// getEntry reads one of the user's registrations, or store.ErrNotFound.
func (s *Store) getEntry(tx *bolt.Tx, user, id string) (entry, error) {
	if store.CheckName("user", user) != nil || store.CheckName("id", id) != nil {
		return entry{}, store.ErrNotFound
	}
	k := key(user, id)
	v := tx.Bucket(bucketRegs).Get(k)
	if v == nil {
		return entry{}, store.ErrNotFound
	}
	r, seq, err := s.decoded.decodeAt(k, v)
	if err != nil {
		return entry{}, err
	}
	es := []entry{{r, seq}}
	markDefault(tx, es)
	return es[0], nil
}

// regs returns the registrations of es.
func regs(es []entry) []store.Registration {
	out := make([]store.Registration, len(es))
	for i, e := range es {
		out[i] = e.reg
	}
	return out
}

// Registrations implements store.Store.
func (s *Store) Registrations(ctx context.Context, user string) ([]store.Registration, error) {
	var out []store.Registration
	err := s.view(ctx, func(tx *bolt.Tx) error {
		es, err := s.userEntries(tx, user)
		out = regs(es)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list registrations: %w", err)
	}
	return out, nil
}

// Registration implements store.Store.
func (s *Store) Registration(ctx context.Context, user, id string) (store.Registration, error) {
	var e entry
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		e, err = s.getEntry(tx, user, id)
		return err
	})
	if err != nil {
		return store.Registration{}, fmt.Errorf("registration %s: %w", id, err)
	}
	return e.reg, nil
}

// FindByAuthenticator implements store.Store through the byauth index.
func (s *Store) FindByAuthenticator(ctx context.Context, authenticatorID string) ([]store.Registration, error) {
	var es []entry
	err := s.view(ctx, func(tx *bolt.Tx) error {
		found, err := s.authEntries(tx, authenticatorID)
		for _, f := range found {
			es = append(es, f.entry)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find registrations of %s: %w", authenticatorID, err)
	}
	slices.SortFunc(es, byAge)
	return regs(es), nil
}

// indexed is a registration found through the byauth index, with its
// index key.
type indexed struct {
	entry
	indexKey []byte
}

// authEntries reads every registration of an authenticator through the
// byauth index.
func (s *Store) authEntries(tx *bolt.Tx, authenticatorID string) ([]indexed, error) {
	var out []indexed
	p := prefix(authenticatorID)
	c := tx.Bucket(bucketByAuth).Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		parts := split(k[len(p):])
		if len(parts) != 3 {
			return nil, fmt.Errorf("%w: bad index key %q", store.ErrCorrupt, k)
		}
		e, err := s.getEntry(tx, parts[1], parts[2])
		if err != nil {
			return nil, fmt.Errorf("%w: index names missing registration %s: %w", store.ErrCorrupt, parts[2], err)
		}
		out = append(out, indexed{entry: e, indexKey: bytes.Clone(k)})
	}
	return out, nil
}

// RemoveRegistration implements store.Store: the delete and the move of the
// default are one transaction.
func (s *Store) RemoveRegistration(ctx context.Context, user, id string) (string, error) {
	var next string
	err := s.update(ctx, func(tx *bolt.Tx) error {
		e, err := s.getEntry(tx, user, id)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketRegs).Delete(key(user, id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketByAuth).Delete(key(e.reg.AuthenticatorID, e.reg.KeyID, user, id)); err != nil {
			return err
		}
		next, err = s.moveDefault(tx, user, e.reg.Default)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("remove registration %s: %w", id, err)
	}
	return next, nil
}

// moveDefault, after a removal, makes the oldest remaining registration the
// default when the removed one was (R7), and returns the default.
func (s *Store) moveDefault(tx *bolt.Tx, user string, wasDefault bool) (string, error) {
	defaults := tx.Bucket(bucketDefaults)
	if !wasDefault {
		return string(defaults.Get([]byte(user))), nil
	}
	es, err := s.userEntries(tx, user)
	if err != nil {
		return "", err
	}
	if len(es) == 0 {
		return "", defaults.Delete([]byte(user))
	}
	return es[0].reg.ID, defaults.Put([]byte(user), []byte(es[0].reg.ID))
}

// SetDefault implements store.Store.
func (s *Store) SetDefault(ctx context.Context, user, id string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if _, err := s.getEntry(tx, user, id); err != nil {
			return err
		}
		return tx.Bucket(bucketDefaults).Put([]byte(user), []byte(id))
	})
	if err != nil {
		return fmt.Errorf("set default %s: %w", id, err)
	}
	return nil
}

// MarkUsed implements store.Store.
func (s *Store) MarkUsed(ctx context.Context, user, id string, at time.Time, signCount uint32) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		e, err := s.getEntry(tx, user, id)
		if err != nil {
			return err
		}
		if e.reg.SignCount, err = store.CheckCounter(e.reg.SignCount, signCount); err != nil {
			return err
		}
		e.reg.LastUsedAt = store.Timestamp(at)
		b, err := encodeRegistration(e.reg, e.seq)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketRegs).Put(key(user, id), b)
	})
	if err != nil {
		return fmt.Errorf("mark registration %s used: %w", id, err)
	}
	return nil
}

// CountRegistrations implements store.Store.
func (s *Store) CountRegistrations(ctx context.Context, user string) (int, error) {
	n := 0
	err := s.view(ctx, func(tx *bolt.Tx) error {
		n = countPrefix(tx.Bucket(bucketRegs), prefix(user))
		return nil
	})
	return n, err
}

// verify checks the store's own invariants: every record decodes and sits
// under its key, the byauth index and the records match one to one, and
// every user with registrations has a default that is one of them.
func verify(tx *bolt.Tx) error {
	hasDefault := map[string]bool{}
	nregs := 0
	err := tx.Bucket(bucketRegs).ForEach(func(k, v []byte) error {
		r, _, err := noMemo.decodeAt(k, v)
		if err != nil {
			return err
		}
		nregs++
		if tx.Bucket(bucketByAuth).Get(key(r.AuthenticatorID, r.KeyID, r.User, r.ID)) == nil {
			return fmt.Errorf("registration %s missing from the authenticator index", r.ID)
		}
		isDefault := string(tx.Bucket(bucketDefaults).Get([]byte(r.User))) == r.ID
		hasDefault[r.User] = hasDefault[r.User] || isDefault
		return nil
	})
	if err != nil {
		return err
	}
	if n := tx.Bucket(bucketByAuth).Stats().KeyN; n != nregs {
		return fmt.Errorf("authenticator index has %d entries for %d registrations", n, nregs)
	}
	if n := tx.Bucket(bucketDefaults).Stats().KeyN; n != len(hasDefault) {
		return fmt.Errorf("%d defaults for %d users with registrations", n, len(hasDefault))
	}
	for user, ok := range hasDefault {
		if !ok {
			return errors.New("user " + user + " has registrations but no valid default")
		}
	}
	return nil
}
