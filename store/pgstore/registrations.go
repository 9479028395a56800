package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hwauthd/hwauthd/store"
)

// regColumns are the columns scanRegistration reads, from registrations r
// joined with users u.
const regColumns = `r.id, r.user_name, r.authenticator_id, r.key_id, r.kind, r.backend, r.label,
	r.public_key, r.certificate, r.credential_id, r.sign_count, r.device_id, r.registered_by,
	r.created_at, r.last_used_at, coalesce(u.default_id = r.id, false)`

// regFrom is the FROM clause matching regColumns.
const regFrom = ` FROM registrations r JOIN users u ON u.name = r.user_name `

// scanRegistration reads one row of regColumns.
func scanRegistration(row pgx.Row) (store.Registration, error) {
	var r store.Registration
	var count int64
	var lastUsed *time.Time
	err := row.Scan(&r.ID, &r.User, &r.AuthenticatorID, &r.KeyID, &r.Kind, &r.Backend, &r.Label,
		&r.PublicKey, &r.Certificate, &r.CredentialID, &count, &r.DeviceID, &r.RegisteredBy,
		&r.CreatedAt, &lastUsed, &r.Default)
	if err != nil {
		return r, err
	}
	if count < 0 || count > 1<<32-1 {
		return r, fmt.Errorf("%w: sign count %d out of range", store.ErrCorrupt, count)
	}
	r.SignCount = uint32(count)
	r.CreatedAt = store.Timestamp(r.CreatedAt)
	if lastUsed != nil {
		r.LastUsedAt = store.Timestamp(*lastUsed)
	}
	return r, nil
}

// queryRegistrations runs a query selecting regColumns.
func (s *Store) queryRegistrations(ctx context.Context, where string, args ...any) ([]store.Registration, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+regColumns+regFrom+where+` ORDER BY r.created_at, r.seq`, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Registration, error) {
		return scanRegistration(row)
	})
	if out == nil && err == nil {
		out = []store.Registration{}
	}
	return out, err
}

// AddRegistration implements store.Store in one transaction: lock the
// user's row, lock the authenticator key, check, count, insert.
func (s *Store) AddRegistration(ctx context.Context, r store.Registration, limit int, allowShared bool) (store.Registration, error) {
	r, err := store.Prepare(r, limit)
	if err != nil {
		return store.Registration{}, err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		r.Default = false
		defaultID, err := lockUser(ctx, tx, r.User)
		if err != nil {
			return err
		}
		if err := checkAuthenticator(ctx, tx, r, allowShared); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM registrations WHERE user_name = $1`, r.User).Scan(&n); err != nil {
			return err
		}
		if n >= limit {
			return store.LimitError(n, limit)
		}
		if err := insert(ctx, tx, r, allowShared); err != nil {
			return err
		}
		if defaultID != nil {
			return nil
		}
		r.Default = true
		_, err = tx.Exec(ctx, `UPDATE users SET default_id = $2 WHERE name = $1`, r.User, r.ID)
		return err
	})
	if err != nil {
		return store.Registration{}, fmt.Errorf("add registration: %w", constraintError(err))
	}
	return r, nil
}

// lockUser creates the user's row when missing and locks it for the rest of
// the transaction; it returns the user's default (nil when none).
func lockUser(ctx context.Context, tx pgx.Tx, user string) (*string, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO users (name) VALUES ($1) ON CONFLICT DO NOTHING`, user); err != nil {
		return nil, err
	}
	var def *string
	err := tx.QueryRow(ctx, `SELECT default_id FROM users WHERE name = $1 FOR UPDATE`, user).Scan(&def)
	return def, err
}

// checkAuthenticator locks the authenticator key for the transaction and
// refuses it when this user has it already, or another user has it and
// sharing is not allowed.
func checkAuthenticator(ctx context.Context, tx pgx.Tx, r store.Registration, allowShared bool) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2 || chr(1) || $3))`,
		lockAuthenticator, r.AuthenticatorID, r.KeyID); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT user_name FROM registrations WHERE authenticator_id = $1 AND key_id = $2`,
		r.AuthenticatorID, r.KeyID)
	if err != nil {
		return err
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, u := range users {
		if u == r.User {
			return store.ErrAlreadyRegistered
		}
	}
	if len(users) > 0 && !allowShared {
		return store.ErrRegisteredToOther
	}
	return nil
}

// insert writes the registration row.
func insert(ctx context.Context, tx pgx.Tx, r store.Registration, shared bool) error {
	var lastUsed *time.Time
	if !r.LastUsedAt.IsZero() {
		lastUsed = &r.LastUsedAt
	}
	_, err := tx.Exec(ctx, `INSERT INTO registrations (id, user_name, authenticator_id, key_id, kind, backend,
		label, public_key, certificate, credential_id, sign_count, device_id, registered_by, created_at,
		last_used_at, shared) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		r.ID, r.User, r.AuthenticatorID, r.KeyID, r.Kind, r.Backend, r.Label, r.PublicKey, r.Certificate,
		r.CredentialID, int64(r.SignCount), r.DeviceID, r.RegisteredBy, r.CreatedAt, lastUsed, shared)
	return err
}

// validKey reports whether user and id can name a stored registration.
func validKey(user, id string) bool {
	return store.CheckName("user", user) == nil && store.CheckName("id", id) == nil
}

// Registrations implements store.Store.
func (s *Store) Registrations(ctx context.Context, user string) ([]store.Registration, error) {
	if store.CheckName("user", user) != nil {
		return []store.Registration{}, nil
	}
	out, err := s.queryRegistrations(ctx, `WHERE r.user_name = $1`, user)
	if err != nil {
		return nil, fmt.Errorf("list registrations: %w", err)
	}
	return out, nil
}

// Registration implements store.Store.
func (s *Store) Registration(ctx context.Context, user, id string) (store.Registration, error) {
	if !validKey(user, id) {
		return store.Registration{}, fmt.Errorf("registration %s: %w", id, store.ErrNotFound)
	}
	r, err := scanRegistration(s.pool.QueryRow(ctx, `SELECT `+regColumns+regFrom+`WHERE r.user_name = $1 AND r.id = $2`, user, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Registration{}, fmt.Errorf("registration %s: %w", id, err)
	}
	return r, nil
}

// FindByAuthenticator implements store.Store.
func (s *Store) FindByAuthenticator(ctx context.Context, authenticatorID string) ([]store.Registration, error) {
	if store.CheckName("authenticator id", authenticatorID) != nil {
		return []store.Registration{}, nil
	}
	out, err := s.queryRegistrations(ctx, `WHERE r.authenticator_id = $1`, authenticatorID)
	if err != nil {
		return nil, fmt.Errorf("find registrations of %s: %w", authenticatorID, err)
	}
	return out, nil
}

// RemoveRegistration implements store.Store: with the user's row locked,
// the default moves to the oldest other registration (R7) and the row is
// deleted, in one transaction.
func (s *Store) RemoveRegistration(ctx context.Context, user, id string) (string, error) {
	if !validKey(user, id) {
		return "", fmt.Errorf("remove registration %s: %w", id, store.ErrNotFound)
	}
	var next string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var def *string
		err := tx.QueryRow(ctx, `SELECT default_id FROM users WHERE name = $1 FOR UPDATE`, user).Scan(&def)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		if def != nil && *def == id {
			err = tx.QueryRow(ctx, `UPDATE users SET default_id = (SELECT id FROM registrations
				WHERE user_name = $1 AND id <> $2 ORDER BY created_at, seq LIMIT 1)
				WHERE name = $1 RETURNING default_id`, user, id).Scan(&def)
			if err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM registrations WHERE user_name = $1 AND id = $2`, user, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		next = ""
		if def != nil {
			next = *def
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("remove registration %s: %w", id, err)
	}
	return next, nil
}

// SetDefault implements store.Store; the foreign key makes sure the default
// is one of the user's own registrations.
func (s *Store) SetDefault(ctx context.Context, user, id string) error {
	if !validKey(user, id) {
		return fmt.Errorf("set default %s: %w", id, store.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE users SET default_id = $2 WHERE name = $1
		AND EXISTS (SELECT 1 FROM registrations WHERE user_name = $1 AND id = $2)`, user, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set default %s: %w", id, constraintError(err))
	}
	return nil
}

// MarkUsed implements store.Store; the row is locked while the counter is
// checked.
func (s *Store) MarkUsed(ctx context.Context, user, id string, at time.Time, signCount uint32) error {
	if !validKey(user, id) {
		return fmt.Errorf("mark registration %s used: %w", id, store.ErrNotFound)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var stored int64
		err := tx.QueryRow(ctx, `SELECT sign_count FROM registrations WHERE user_name = $1 AND id = $2 FOR UPDATE`,
			user, id).Scan(&stored)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		count, err := store.CheckCounter(uint32(stored), signCount)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE registrations SET sign_count = $3, last_used_at = $4
			WHERE user_name = $1 AND id = $2`, user, id, int64(count), store.Timestamp(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("mark registration %s used: %w", id, err)
	}
	return nil
}

// CountRegistrations implements store.Store.
func (s *Store) CountRegistrations(ctx context.Context, user string) (int, error) {
	var n int
	if store.CheckName("user", user) != nil {
		return 0, nil
	}
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM registrations WHERE user_name = $1`, user).Scan(&n)
	return n, err
}
