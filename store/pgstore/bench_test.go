package pgstore

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/store"
	"github.com/hwauthd/hwauthd/store/storetest"
)

// preload writes storetest.BenchUsers preloaded users with COPY, then makes
// each user's registration the default.
func preload(b *testing.B) *Store {
	ctx := context.Background()
	s := openDSN(b, testenv.Postgres(b).DSN())
	users := make([][]any, storetest.BenchUsers)
	regs := make([][]any, storetest.BenchUsers)
	for i := range storetest.BenchUsers {
		r, err := store.Prepare(storetest.PreloadRegistration(i), 5)
		if err != nil {
			b.Fatal(err)
		}
		users[i] = []any{r.User}
		regs[i] = []any{r.ID, r.User, r.AuthenticatorID, r.KeyID, r.Kind, r.Backend, r.Label,
			r.PublicKey, int64(0), "", r.RegisteredBy, r.CreatedAt, false}
	}
	if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"name"}, pgx.CopyFromRows(users)); err != nil {
		b.Fatal(err)
	}
	cols := []string{"id", "user_name", "authenticator_id", "key_id", "kind", "backend", "label",
		"public_key", "sign_count", "device_id", "registered_by", "created_at", "shared"}
	if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{"registrations"}, cols, pgx.CopyFromRows(regs)); err != nil {
		b.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE users u SET default_id = r.id FROM registrations r
		WHERE r.user_name = u.name; ANALYZE`); err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkRegister(b *testing.B) { storetest.BenchRegister(b, preload(b)) }

func BenchmarkLookup(b *testing.B) { storetest.BenchLookup(b, preload(b)) }
