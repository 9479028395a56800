package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hwauthd/hwauthd/store"
)

// BenchUsers is how many users the benchmarks preload.
const BenchUsers = 100_000

// PreloadRegistration returns the registration of preloaded user i (one per
// user): user "user<i>", authenticator "piv-<i>", key "9a". Backends
// preload BenchUsers of these in bulk (batched transactions, COPY) before
// calling the benchmark bodies.
func PreloadRegistration(i int) store.Registration {
	return store.Registration{
		User: fmt.Sprintf("user%d", i), AuthenticatorID: fmt.Sprintf("piv-%d", i), KeyID: "9a",
		Kind: store.KindSmartcard, Backend: store.BackendPIV, Label: "preloaded",
		PublicKey: make([]byte, 91), RegisteredBy: "uid:0",
	}
}

// BenchRegister measures AddRegistration into a store preloaded with
// BenchUsers users: each iteration registers a new authenticator for a new
// user.
func BenchRegister(b *testing.B, s store.Store) {
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := PreloadRegistration(BenchUsers + i)
		if _, err := s.AddRegistration(ctx, r, 5, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchLookup measures listing a random preloaded user's registrations,
// listing those of one of a few users again and again (a device's own
// accounts, which sign-in clients ask about before each sign-in), and
// finding registrations by a random preloaded authenticator.
func BenchLookup(b *testing.B, s store.Store) {
	ctx := context.Background()
	registrations := func(b *testing.B, user func() string) {
		for b.Loop() {
			rs, err := s.Registrations(ctx, user())
			if err != nil || len(rs) != 1 {
				b.Fatalf("Registrations = %d, %v", len(rs), err)
			}
		}
	}
	b.Run("Registrations", func(b *testing.B) {
		registrations(b, func() string { return fmt.Sprintf("user%d", rand.IntN(BenchUsers)) })
	})
	b.Run("RegistrationsOfFewUsers", func(b *testing.B) {
		registrations(b, func() string { return fmt.Sprintf("user%d", rand.IntN(25)) })
	})
	b.Run("FindByAuthenticator", func(b *testing.B) {
		for b.Loop() {
			rs, err := s.FindByAuthenticator(ctx, fmt.Sprintf("piv-%d", rand.IntN(BenchUsers)))
			if err != nil || len(rs) != 1 {
				b.Fatalf("FindByAuthenticator = %d, %v", len(rs), err)
			}
		}
	})
}
