// Package storetest is the conformance suite every store.Store backend
// passes: Run checks each behaviour of the interface against a fresh store,
// RunAcrossInstances checks that two instances sharing one registry (two
// devices of a fleet) cannot together break the limit.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/store"
)

// Opener returns a fresh, empty store for one test; it registers its own
// cleanup with t.
type Opener func(t *testing.T) store.Store

// Run runs every conformance test against stores made by open, as parallel
// subtests (each has its own store).
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"AddAndGet", testAddAndGet},
		{"InvalidArguments", testInvalid},
		{"FirstIsDefault", testFirstIsDefault},
		{"SetDefault", testSetDefault},
		{"RemoveDefaultMovesToOldest", testRemoveDefault},
		{"RemoveOtherKeepsDefault", testRemoveOther},
		{"RemoveLastLeavesNone", testRemoveLast},
		{"Limit1", func(t *testing.T, s store.Store) { testLimit(t, s, 1) }},
		{"Limit5", func(t *testing.T, s store.Store) { testLimit(t, s, 5) }},
		{"Limit7", func(t *testing.T, s store.Store) { testLimit(t, s, 7) }},
		{"Limit0", func(t *testing.T, s store.Store) { testLimit(t, s, 0) }},
		{"AlreadyRegistered", testAlreadyRegistered},
		{"RegisteredToOther", testRegisteredToOther},
		{"FindByAuthenticator", testFind},
		{"UsersIsolated", testIsolation},
		{"MarkUsed", testMarkUsed},
		{"Links", testLinks},
		{"RememberRecallForget", testRemember},
		{"ConcurrentLimit", testConcurrentLimit},
		{"ConcurrentSameAuthenticator", testConcurrentSameAuthenticator},
		{"ForgetCard", testForgetCard},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// reg returns a filled registration for user of authenticator auth, key key.
func reg(user, auth, key string) store.Registration {
	return store.Registration{
		User:            user,
		AuthenticatorID: auth,
		Kind:            store.KindSmartcard,
		Backend:         store.BackendPIV,
		Label:           "card of " + user,
		KeyID:           key,
		PublicKey:       []byte("pkix:" + auth + "/" + key),
		Certificate:     []byte{0x30, 0x82, 0x01, 0x00},
		RegisteredBy:    "uid:0",
	}
}

// add adds r with the default limit of five and fails the test on error.
func add(t *testing.T, s store.Store, r store.Registration) store.Registration {
	t.Helper()
	got, err := s.AddRegistration(context.Background(), r, 5, false)
	if err != nil {
		t.Fatalf("AddRegistration(%s, %s/%s): %v", r.User, r.AuthenticatorID, r.KeyID, err)
	}
	return got
}

// list returns the user's registrations and fails the test on error.
func list(t *testing.T, s store.Store, user string) []store.Registration {
	t.Helper()
	rs, err := s.Registrations(context.Background(), user)
	if err != nil {
		t.Fatalf("Registrations(%s): %v", user, err)
	}
	return rs
}

// ids returns the ids of rs in order.
func ids(rs []store.Registration) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// defaultOf returns the id of the registration marked default in the user's
// list and fails when more than one is marked.
func defaultOf(t *testing.T, s store.Store, user string) string {
	t.Helper()
	def := ""
	for _, r := range list(t, s, user) {
		if r.Default {
			if def != "" {
				t.Fatalf("user %s has two defaults: %s and %s", user, def, r.ID)
			}
			def = r.ID
		}
	}
	return def
}

// wantErr fails the test unless err is (wraps) want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// sameRegistration fails when got differs from want in any stored field.
func sameRegistration(t *testing.T, got, want store.Registration) {
	t.Helper()
	diff := func(field string, g, w any) {
		t.Errorf("registration %s: %s = %v, want %v", want.ID, field, g, w)
	}
	if got.ID != want.ID || got.User != want.User || got.AuthenticatorID != want.AuthenticatorID ||
		got.Kind != want.Kind || got.Backend != want.Backend || got.Label != want.Label ||
		got.KeyID != want.KeyID || got.DeviceID != want.DeviceID || got.RegisteredBy != want.RegisteredBy {
		diff("strings", fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want))
	}
	if !bytes.Equal(got.PublicKey, want.PublicKey) || !bytes.Equal(got.Certificate, want.Certificate) ||
		!bytes.Equal(got.CredentialID, want.CredentialID) {
		diff("bytes", fmt.Sprintf("%x %x %x", got.PublicKey, got.Certificate, got.CredentialID),
			fmt.Sprintf("%x %x %x", want.PublicKey, want.Certificate, want.CredentialID))
	}
	if got.SignCount != want.SignCount {
		diff("SignCount", got.SignCount, want.SignCount)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		diff("CreatedAt", got.CreatedAt, want.CreatedAt)
	}
	if !got.LastUsedAt.Equal(want.LastUsedAt) {
		diff("LastUsedAt", got.LastUsedAt, want.LastUsedAt)
	}
	if got.Default != want.Default {
		diff("Default", got.Default, want.Default)
	}
}

// sortedCopy returns ss sorted.
func sortedCopy(ss []string) []string {
	out := append([]string(nil), ss...)
	sort.Strings(out)
	return out
}

// race runs fn(i) for i in [0, n) in n goroutines released together and
// returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// tally counts nil errors and errors that wrap want, and fails the test on
// any other error.
func tally(t *testing.T, errs []error, want error) (ok, refused int) {
	t.Helper()
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, want):
			refused++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	return ok, refused
}

// at returns a fixed time plus d, for registrations with chosen ages.
func at(d time.Duration) time.Time {
	return time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC).Add(d)
}
