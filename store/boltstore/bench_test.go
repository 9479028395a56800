package boltstore

import (
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/hwauthd/hwauthd/store"
	"github.com/hwauthd/hwauthd/store/storetest"
)

// preload writes storetest.BenchUsers preloaded users in batches of 10 000
// per transaction.
func preload(b *testing.B) *Store {
	s := openTemp(b)
	for lo := 0; lo < storetest.BenchUsers; lo += 10_000 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i := lo; i < min(storetest.BenchUsers, lo+10_000); i++ {
				r, err := store.Prepare(storetest.PreloadRegistration(i), 5)
				if err != nil {
					return err
				}
				if err := insert(tx, &r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkRegister(b *testing.B) { storetest.BenchRegister(b, preload(b)) }

func BenchmarkLookup(b *testing.B) { storetest.BenchLookup(b, preload(b)) }
