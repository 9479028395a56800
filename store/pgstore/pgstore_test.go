package pgstore

import (
	"context"
	"testing"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/store"
	"github.com/hwauthd/hwauthd/store/storetest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// openDSN opens a store on dsn, closed at cleanup.
func openDSN(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openDSN(t, testenv.Postgres(t).DSN())
	})
}

func TestConformanceAcrossInstances(t *testing.T) {
	storetest.RunAcrossInstances(t, func(t *testing.T) (store.Store, store.Store) {
		dsn := testenv.Postgres(t).DSN()
		return openDSN(t, dsn), openDSN(t, dsn)
	})
}
