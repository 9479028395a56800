package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hwauthd/hwauthd/store"
)

// migrations are applied in order; migrations[i] takes the schema from
// version i to i+1. Never edit one that has shipped: append.
var migrations = []string{
	// 1: registrations, users with their default, identity links,
	// remembered sign-in information.
	`
CREATE TABLE users (
	name       text PRIMARY KEY,
	default_id text
);
CREATE TABLE registrations (
	id               text PRIMARY KEY,
	seq              bigint GENERATED ALWAYS AS IDENTITY,
	user_name        text NOT NULL REFERENCES users (name),
	authenticator_id text NOT NULL,
	key_id           text NOT NULL,
	kind             text NOT NULL,
	backend          text NOT NULL,
	label            text NOT NULL,
	public_key       bytea,
	certificate      bytea,
	credential_id    bytea,
	sign_count       bigint NOT NULL CHECK (sign_count BETWEEN 0 AND 4294967295),
	device_id        text NOT NULL,
	registered_by    text NOT NULL,
	created_at       timestamptz NOT NULL,
	last_used_at     timestamptz,
	shared           boolean NOT NULL,
	CONSTRAINT registrations_user_id UNIQUE (user_name, id),
	CONSTRAINT registrations_user_authenticator_key UNIQUE (user_name, authenticator_id, key_id)
);
CREATE UNIQUE INDEX registrations_exclusive ON registrations (authenticator_id, key_id) WHERE NOT shared;
CREATE INDEX registrations_authenticator ON registrations (authenticator_id);
CREATE INDEX registrations_user_created ON registrations (user_name, created_at, seq);
ALTER TABLE users ADD CONSTRAINT users_default_fk
	FOREIGN KEY (name, default_id) REFERENCES registrations (user_name, id);
CREATE TABLE links (
	identity   text PRIMARY KEY,
	user_name  text NOT NULL,
	created_by text NOT NULL,
	created_at timestamptz NOT NULL
);
CREATE INDEX links_user ON links (user_name);
CREATE TABLE remembered (
	user_name text NOT NULL,
	key       text NOT NULL,
	value     text NOT NULL,
	PRIMARY KEY (user_name, key)
);
`,
	// 2: the uid of a link's account, so that an account created again
	// under the same name does not inherit the links (NULL: made before).
	`ALTER TABLE links ADD COLUMN uid bigint CHECK (uid BETWEEN 0 AND 4294967295);`,
}

// SchemaVersion is the schema version this package migrates to.
var SchemaVersion = len(migrations)

// migrate applies the missing migrations, each in its own transaction under
// an advisory lock so that daemons starting together do not race.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	for {
		done := false
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var err error
			done, err = migrateStep(ctx, tx)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate registry schema: %w", err)
		}
		if done {
			return nil
		}
	}
}

// migrateStep applies the next migration, if any, in tx; it reports done
// when the schema is current.
func migrateStep(ctx context.Context, tx pgx.Tx) (done bool, err error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockMigrate); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return false, err
	}
	var v int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return false, err
	}
	switch {
	case v > len(migrations):
		return false, fmt.Errorf("%w: version %d, this hwauthd knows up to %d", store.ErrSchemaTooNew, v, len(migrations))
	case v == len(migrations):
		return true, nil
	}
	if _, err := tx.Exec(ctx, migrations[v]); err != nil {
		return false, fmt.Errorf("migration %d: %w", v+1, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
		return false, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, v+1)
	return false, err
}
