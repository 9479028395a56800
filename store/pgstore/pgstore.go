// Package pgstore is the fleet registry: store.Store on PostgreSQL, shared
// by every device of a fleet so that the limit of five authenticators per
// user (R5) holds across devices.
//
// AddRegistration runs in one transaction that first locks the user's row
// (INSERT … ON CONFLICT DO NOTHING; SELECT … FOR UPDATE) and an advisory
// lock on the authenticator key, then checks and inserts: two registrations
// for one user, or of one authenticator, from any connection or host are
// serialized. Constraints back the checks: unique (user, authenticator,
// key), a partial unique index allowing one unshared registration per
// authenticator key, and the user's default as a foreign key to one of the
// user's own registrations.
//
// Virtual-card key blobs are device state and never go here: with this
// registry the daemon still opens the local boltstore for
// store.DeviceState.
package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hwauthd/hwauthd/store"
)

// Advisory lock classes (the first key of pg_advisory_xact_lock(int, int)).
const (
	lockMigrate       = 0x68770001 // "hw" 1: schema migrations
	lockAuthenticator = 0x68770002 // "hw" 2: one authenticator key
)

// Store is the PostgreSQL registry. It implements store.Store and is safe
// for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by dsn (a libpq connection string or
// URL; pool_max_conns and the like are honoured), and creates or migrates
// the schema. A schema newer than this program is refused with
// store.ErrSchemaTooNew.
func Open(ctx context.Context, dsn string) (*Store, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open registry database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to registry database: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// Close closes every connection.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// retryable reports whether err is a serialization failure or deadlock,
// after which the whole transaction may be run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// inTx runs fn in one transaction and commits it, running it again (up to
// five times) after a serialization failure or deadlock.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	for range 5 {
		err = pgx.BeginFunc(ctx, s.pool, fn)
		if !retryable(err) {
			return err
		}
	}
	return err
}

// constraintError maps a unique violation of the registrations table to the
// store's error classes, and returns other errors as they are.
func constraintError(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch {
	case pe.Code == "23505" && pe.ConstraintName == "registrations_user_authenticator_key":
		return fmt.Errorf("%w (%w)", store.ErrAlreadyRegistered, err)
	case pe.Code == "23505" && pe.ConstraintName == "registrations_exclusive":
		return fmt.Errorf("%w (%w)", store.ErrRegisteredToOther, err)
	case pe.Code == "23503" && pe.ConstraintName == "users_default_fk":
		return fmt.Errorf("%w (%w)", store.ErrNotFound, err)
	}
	return err
}
