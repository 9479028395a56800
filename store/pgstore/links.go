package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hwauthd/hwauthd/store"
)

// AddLink implements store.Store in one statement: the insert either
// creates the link or returns the user it already has.
func (s *Store) AddLink(ctx context.Context, user string, uid uint32, identity, createdBy string) error {
	if err := store.CheckLink(user, identity); err != nil {
		return err
	}
	var owner string
	err := s.pool.QueryRow(ctx, `INSERT INTO links (identity, user_name, uid, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (identity) DO UPDATE SET uid = CASE
			WHEN links.user_name = EXCLUDED.user_name THEN EXCLUDED.uid ELSE links.uid END
		RETURNING user_name`, identity, user, int64(uid), createdBy, store.Timestamp(time.Now())).Scan(&owner)
	if err == nil && owner != user {
		err = store.ErrAlreadyLinked
	}
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
	tag, err := s.pool.Exec(ctx, `DELETE FROM links WHERE identity = $1 AND user_name = $2`, identity, user)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("unlink identity: %w", err)
	}
	return nil
}

// Links implements store.Store, sorted by identity bytewise (COLLATE "C")
// whatever the database's collation.
func (s *Store) Links(ctx context.Context, user string) ([]store.Link, error) {
	if store.CheckName("user", user) != nil {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT identity, user_name, uid, created_by, created_at FROM links
		WHERE user_name = $1 ORDER BY identity COLLATE "C"`, user)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanLink)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	return out, nil
}

// LinkOf implements store.Store.
func (s *Store) LinkOf(ctx context.Context, identity string) (store.Link, error) {
	if store.CheckName("identity", identity) != nil {
		return store.Link{}, fmt.Errorf("link of identity: %w", store.ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, `SELECT identity, user_name, uid, created_by, created_at FROM links WHERE identity = $1`, identity)
	if err != nil {
		return store.Link{}, fmt.Errorf("link of identity: %w", err)
	}
	l, err := pgx.CollectExactlyOneRow(rows, scanLink)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Link{}, fmt.Errorf("link of identity: %w", err)
	}
	return l, nil
}

// scanLink reads a row of identity, user_name, uid, created_by, created_at.
func scanLink(row pgx.CollectableRow) (store.Link, error) {
	var l store.Link
	var uid *int64
	err := row.Scan(&l.Identity, &l.User, &uid, &l.CreatedBy, &l.CreatedAt)
	l.CreatedAt = store.Timestamp(l.CreatedAt)
	if uid != nil {
		u := uint32(*uid)
		l.UID = &u
	}
	return l, err
}

// Remember implements store.Store.
func (s *Store) Remember(ctx context.Context, user string, key, value string) error {
	if err := store.CheckName("user", user); err != nil {
		return err
	}
	if err := store.CheckName("key", key); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO remembered (user_name, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (user_name, key) DO UPDATE SET value = EXCLUDED.value`, user, key, value)
	return err
}

// Recall implements store.Store.
func (s *Store) Recall(ctx context.Context, user string) (map[string]string, error) {
	out := map[string]string{}
	if store.CheckName("user", user) != nil {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT key, value FROM remembered WHERE user_name = $1`, user)
	if err != nil {
		return nil, err
	}
	var k, v string
	_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error {
		out[k] = v
		return nil
	})
	return out, err
}

// Forget implements store.Store.
func (s *Store) Forget(ctx context.Context, user string) error {
	if store.CheckName("user", user) != nil {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM remembered WHERE user_name = $1`, user)
	return err
}
