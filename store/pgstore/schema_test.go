package pgstore

import (
	"context"
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/store"
)

func TestOpenTogetherMigratesOnce(t *testing.T) {
	dsn := testenv.Postgres(t).DSN()
	const n = 4
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			s, err := Open(context.Background(), dsn)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
	s := openDSN(t, dsn)
	var rows, v int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*), max(version) FROM schema_version`).Scan(&rows, &v); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || v != SchemaVersion {
		t.Errorf("schema_version has %d rows, version %d; want 1 row, %d", rows, v, SchemaVersion)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dsn := testenv.Postgres(t).DSN()
	s := openDSN(t, dsn)
	if _, err := s.pool.Exec(context.Background(), `UPDATE schema_version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), dsn); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open on a newer schema = %v, want ErrSchemaTooNew", err)
	}
}

// TestConstraintsBackTheChecks writes around the store's checks with plain
// SQL and expects the schema itself to refuse.
func TestConstraintsBackTheChecks(t *testing.T) {
	ctx := context.Background()
	s := openDSN(t, testenv.Postgres(t).DSN())
	a, err := s.AddRegistration(ctx, store.Registration{User: "alice", AuthenticatorID: "piv-1", KeyID: "9a"}, 5, false)
	if err != nil {
		t.Fatal(err)
	}
	raw := func(user, id string, shared bool) error {
		r, _ := store.Prepare(store.Registration{User: user, AuthenticatorID: "piv-1", KeyID: "9a"}, 5)
		r.ID = id
		_, err := s.pool.Exec(ctx, `INSERT INTO users (name) VALUES ($1) ON CONFLICT DO NOTHING`, user)
		if err != nil {
			return err
		}
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if err := insert(ctx, tx, r, shared); err != nil {
			return constraintError(err)
		}
		return tx.Commit(ctx)
	}
	if err := raw("bob", "raw-1", false); !errors.Is(err, store.ErrRegisteredToOther) {
		t.Errorf("second unshared row of one key = %v, want ErrRegisteredToOther from the index", err)
	}
	if err := raw("alice", "raw-2", true); !errors.Is(err, store.ErrAlreadyRegistered) {
		t.Errorf("same user, same key = %v, want ErrAlreadyRegistered from the constraint", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM registrations WHERE id = $1`, a.ID); err == nil {
		t.Errorf("deleting the default registration behind the store's back succeeded")
	}
	if _, err := s.pool.Exec(ctx, `UPDATE users SET default_id = 'nope' WHERE name = 'alice'`); err == nil {
		t.Errorf("a default that is not one of the user's registrations was accepted")
	}
}
