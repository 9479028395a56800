package boltstore

import (
	"context"
	"testing"

	"github.com/hwauthd/hwauthd/store"
	"github.com/hwauthd/hwauthd/store/storetest"
)

// preload writes storetest.BenchUsers preloaded users in batches of 10 000
// per transaction.
func preload(b *testing.B) *Store {
	s := openTemp(b)
	for lo := 0; lo < storetest.BenchUsers; lo += 10_000 {
		var batch []store.Registration
		for i := lo; i < min(storetest.BenchUsers, lo+10_000); i++ {
			batch = append(batch, storetest.PreloadRegistration(i))
		}
		if err := s.AddRegistrations(context.Background(), batch, 5, false); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkRegister(b *testing.B) { storetest.BenchRegister(b, preload(b)) }

func BenchmarkLookup(b *testing.B) { storetest.BenchLookup(b, preload(b)) }
