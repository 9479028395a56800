package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/hwauthd/hwauthd/store"
)

// PairOpener returns two independent store instances over one shared
// registry (two devices of a fleet), each with its own connections.
type PairOpener func(t *testing.T) (store.Store, store.Store)

// RunAcrossInstances checks that registrations racing through two instances
// of one shared registry cannot exceed the limit in total (R5 across
// devices), and that each instance sees what the other wrote.
func RunAcrossInstances(t *testing.T, open PairOpener) {
	t.Run("LimitAcrossInstances", func(t *testing.T) {
		a, b := open(t)
		const n, limit = 20, 5
		errs := race(n, func(i int) error {
			s := a
			if i%2 == 1 {
				s = b
			}
			_, err := s.AddRegistration(context.Background(), reg("alice", fmt.Sprintf("piv-%02d", i), "9a"), limit, false)
			return err
		})
		ok, refused := tally(t, errs, store.ErrLimitReached)
		if ok != limit || refused != n-limit {
			t.Errorf("two instances: %d succeeded, %d refused; want %d, %d", ok, refused, limit, n-limit)
		}
		for _, s := range []store.Store{a, b} {
			if c, err := s.CountRegistrations(context.Background(), "alice"); err != nil || c != limit {
				t.Errorf("count = %d, %v; want %d", c, err, limit)
			}
			if defaultOf(t, s, "alice") == "" {
				t.Errorf("no default")
			}
		}
	})
	t.Run("SameAuthenticatorAcrossInstances", func(t *testing.T) {
		a, b := open(t)
		const n = 10
		errs := race(n, func(i int) error {
			s := a
			if i%2 == 1 {
				s = b
			}
			_, err := s.AddRegistration(context.Background(), reg(fmt.Sprintf("user%d", i), "piv-shared", "9a"), 5, false)
			return err
		})
		ok, refused := tally(t, errs, store.ErrRegisteredToOther)
		if ok != 1 || refused != n-1 {
			t.Errorf("two instances, one card: %d succeeded, %d refused; want 1, %d", ok, refused, n-1)
		}
	})
}
