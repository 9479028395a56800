package boltstore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/hwauthd/hwauthd/store"
	"github.com/hwauthd/hwauthd/store/storetest"
)

// openTemp opens a fresh store in a temporary directory, closed at cleanup.
func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state", "hwauthd.db"), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// TestAddRegistrationsAllOrNothing: a batch is checked registration by
// registration as AddRegistration checks it, and one refusal (the sixth of a
// user) leaves none of the batch stored.
func TestAddRegistrationsAllOrNothing(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	reg := func(user string, i int) store.Registration {
		r := storetest.PreloadRegistration(i)
		r.User = user
		return r
	}
	if err := s.AddRegistrations(ctx, []store.Registration{reg("a", 1), reg("a", 2), reg("b", 3)}, 5, false); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountRegistrations(ctx, "a"); n != 2 {
		t.Fatalf("a has %d registrations, want 2", n)
	}
	var batch []store.Registration
	for i := range 6 {
		batch = append(batch, reg("c", 10+i))
	}
	if err := s.AddRegistrations(ctx, batch, 5, false); !errors.Is(err, store.ErrLimitReached) {
		t.Fatalf("six for one user: %v, want ErrLimitReached", err)
	}
	if n, _ := s.CountRegistrations(ctx, "c"); n != 0 {
		t.Fatalf("c has %d registrations after a refused batch, want 0", n)
	}
	rs, err := s.Registrations(ctx, "b")
	if err != nil || len(rs) != 1 || !rs[0].Default {
		t.Fatalf("b: %+v, %v; want one default registration", rs, err)
	}
}
