package storetest

import (
	"context"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/store"
)

var urlSafe = regexp.MustCompile(`^[A-Za-z0-9_-]{16,}$`)

func testAddAndGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := reg("alice", "piv-0001", "9a")
	r.Kind, r.Backend = store.KindSecurityKey, store.BackendFIDO2
	r.CredentialID = []byte{1, 2, 3, 0, 255}
	r.SignCount = 41
	r.DeviceID = "tpm-ek-abc"
	before := time.Now().Add(-time.Second)
	got := add(t, s, r)
	if !urlSafe.MatchString(got.ID) {
		t.Errorf("ID %q is not a URL-safe random id", got.ID)
	}
	if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("CreatedAt %v is not now", got.CreatedAt)
	}
	if !got.Default {
		t.Errorf("first registration not marked default")
	}
	r.ID, r.CreatedAt, r.Default = got.ID, got.CreatedAt, true
	sameRegistration(t, got, r)
	one, err := s.Registration(ctx, "alice", got.ID)
	if err != nil {
		t.Fatalf("Registration: %v", err)
	}
	sameRegistration(t, one, r)
	rs := list(t, s, "alice")
	if len(rs) != 1 {
		t.Fatalf("Registrations = %d entries, want 1", len(rs))
	}
	sameRegistration(t, rs[0], r)
	if n, err := s.CountRegistrations(ctx, "alice"); err != nil || n != 1 {
		t.Errorf("CountRegistrations = %d, %v; want 1", n, err)
	}
	if rs := list(t, s, "nobody"); len(rs) != 0 {
		t.Errorf("Registrations(nobody) = %v, want none", rs)
	}
	_, err = s.Registration(ctx, "alice", "no-such-id")
	wantErr(t, "Registration(unknown id)", err, store.ErrNotFound)
	second := add(t, s, reg("alice", "piv-0002", "9a"))
	if second.ID == got.ID {
		t.Errorf("two registrations got the same id %s", got.ID)
	}
}

func testInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	for name, r := range map[string]store.Registration{
		"empty user":  reg("", "piv-1", "9a"),
		"NUL in user": reg("al\x00ice", "piv-1", "9a"),
		"empty auth":  reg("alice", "", "9a"),
		"NUL in key":  reg("alice", "piv-1", "9\x00a"),
	} {
		_, err := s.AddRegistration(ctx, r, 5, false)
		wantErr(t, name, err, store.ErrInvalid)
	}
	_, err := s.AddRegistration(ctx, reg("alice", "piv-1", "9a"), -1, false)
	wantErr(t, "negative limit", err, store.ErrInvalid)
	if n, err := s.CountRegistrations(ctx, "alice"); err != nil || n != 0 {
		t.Errorf("after refused adds CountRegistrations = %d, %v; want 0", n, err)
	}
}

func testFirstIsDefault(t *testing.T, s store.Store) {
	first := add(t, s, reg("alice", "piv-1", "9a"))
	second := add(t, s, reg("alice", "piv-2", "9a"))
	if !first.Default || second.Default {
		t.Errorf("Default flags on add: first %v, second %v; want true, false", first.Default, second.Default)
	}
	if d := defaultOf(t, s, "alice"); d != first.ID {
		t.Errorf("default = %q, want first %q", d, first.ID)
	}
}

func testSetDefault(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := add(t, s, reg("alice", "piv-1", "9a"))
	b := add(t, s, reg("alice", "piv-2", "9a"))
	if err := s.SetDefault(ctx, "alice", b.ID); err != nil {
		t.Fatalf("SetDefault: %v", err)
	}
	if d := defaultOf(t, s, "alice"); d != b.ID {
		t.Errorf("default = %q, want %q", d, b.ID)
	}
	got, err := s.Registration(ctx, "alice", b.ID)
	if err != nil || !got.Default {
		t.Errorf("Registration(b).Default = %v, %v; want true", got.Default, err)
	}
	got, err = s.Registration(ctx, "alice", a.ID)
	if err != nil || got.Default {
		t.Errorf("Registration(a).Default = %v, %v; want false", got.Default, err)
	}
	wantErr(t, "SetDefault(unknown)", s.SetDefault(ctx, "alice", "nope"), store.ErrNotFound)
	if d := defaultOf(t, s, "alice"); d != b.ID {
		t.Errorf("default after failed SetDefault = %q, want %q", d, b.ID)
	}
}

func testRemoveDefault(t *testing.T, s store.Store) {
	ctx := context.Background()
	// Added in one order, aged in another: the default moves to the oldest
	// by CreatedAt, not the first inserted.
	r := reg("alice", "piv-a", "9a")
	r.CreatedAt = at(2 * time.Hour)
	a := add(t, s, r)
	r = reg("alice", "piv-b", "9a")
	r.CreatedAt = at(3 * time.Hour)
	b := add(t, s, r)
	r = reg("alice", "piv-c", "9a")
	r.CreatedAt = at(time.Hour)
	c := add(t, s, r)
	if got, want := ids(list(t, s, "alice")), []string{c.ID, a.ID, b.ID}; !slices.Equal(got, want) {
		t.Fatalf("Registrations order = %v, want by CreatedAt %v", got, want)
	}
	if err := s.SetDefault(ctx, "alice", b.ID); err != nil {
		t.Fatal(err)
	}
	next, err := s.RemoveRegistration(ctx, "alice", b.ID)
	if err != nil {
		t.Fatalf("RemoveRegistration(default): %v", err)
	}
	if next != c.ID {
		t.Errorf("new default = %q, want oldest remaining %q", next, c.ID)
	}
	if d := defaultOf(t, s, "alice"); d != c.ID {
		t.Errorf("listed default = %q, want %q", d, c.ID)
	}
	_, err = s.Registration(ctx, "alice", b.ID)
	wantErr(t, "Registration(removed)", err, store.ErrNotFound)
	_, err = s.RemoveRegistration(ctx, "alice", b.ID)
	wantErr(t, "RemoveRegistration(removed)", err, store.ErrNotFound)
}

func testRemoveOther(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := add(t, s, reg("alice", "piv-a", "9a"))
	b := add(t, s, reg("alice", "piv-b", "9a"))
	next, err := s.RemoveRegistration(ctx, "alice", b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if next != a.ID {
		t.Errorf("default after removing a non-default = %q, want unchanged %q", next, a.ID)
	}
	if n, _ := s.CountRegistrations(ctx, "alice"); n != 1 {
		t.Errorf("count = %d, want 1", n)
	}
}

func testRemoveLast(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := add(t, s, reg("alice", "piv-a", "9a"))
	next, err := s.RemoveRegistration(ctx, "alice", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if next != "" {
		t.Errorf("default after removing the last = %q, want none", next)
	}
	if rs := list(t, s, "alice"); len(rs) != 0 {
		t.Errorf("Registrations = %v, want none", ids(rs))
	}
	if n, err := s.CountRegistrations(ctx, "alice"); err != nil || n != 0 {
		t.Errorf("count = %d, %v; want 0", n, err)
	}
	again := add(t, s, reg("alice", "piv-a", "9a"))
	if !again.Default {
		t.Errorf("registration after all were removed is not the default")
	}
}

func testLimit(t *testing.T, s store.Store, limit int) {
	ctx := context.Background()
	var added []store.Registration
	for i := range limit {
		r, err := s.AddRegistration(ctx, reg("alice", "piv-"+string(rune('a'+i)), "9a"), limit, false)
		if err != nil {
			t.Fatalf("registration %d of %d: %v", i+1, limit, err)
		}
		added = append(added, r)
	}
	_, err := s.AddRegistration(ctx, reg("alice", "piv-extra", "9a"), limit, false)
	wantErr(t, "registration over the limit", err, store.ErrLimitReached)
	if n, _ := s.CountRegistrations(ctx, "alice"); n != limit {
		t.Fatalf("count = %d, want %d", n, limit)
	}
	// Another user is not affected by alice's count.
	if _, err := s.AddRegistration(ctx, reg("bob", "piv-bob", "9a"), max(limit, 1), false); err != nil {
		t.Errorf("bob's first registration: %v", err)
	}
	if limit == 0 {
		return
	}
	if _, err := s.RemoveRegistration(ctx, "alice", added[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRegistration(ctx, reg("alice", "piv-extra", "9a"), limit, false); err != nil {
		t.Errorf("registration after removing one: %v", err)
	}
	// A lower limit than the count refuses too (policy lowered).
	_, err = s.AddRegistration(ctx, reg("alice", "piv-more", "9a"), limit-1, false)
	wantErr(t, "registration over a lowered limit", err, store.ErrLimitReached)
}

func testAlreadyRegistered(t *testing.T, s store.Store) {
	ctx := context.Background()
	add(t, s, reg("alice", "piv-1", "9a"))
	_, err := s.AddRegistration(ctx, reg("alice", "piv-1", "9a"), 5, true)
	wantErr(t, "same authenticator and key again", err, store.ErrAlreadyRegistered)
	add(t, s, reg("alice", "piv-1", "9c")) // another key of the same card
	if n, _ := s.CountRegistrations(ctx, "alice"); n != 2 {
		t.Errorf("count = %d, want 2", n)
	}
}

func testRegisteredToOther(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := add(t, s, reg("alice", "piv-1", "9a"))
	_, err := s.AddRegistration(ctx, reg("bob", "piv-1", "9a"), 5, false)
	wantErr(t, "alice's authenticator for bob", err, store.ErrRegisteredToOther)
	if n, _ := s.CountRegistrations(ctx, "bob"); n != 0 {
		t.Errorf("bob's count after refusal = %d, want 0", n)
	}
	b, err := s.AddRegistration(ctx, reg("bob", "piv-1", "9a"), 5, true)
	if err != nil {
		t.Fatalf("shared registration: %v", err)
	}
	found, err := s.FindByAuthenticator(ctx, "piv-1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedCopy(ids(found)), sortedCopy([]string{a.ID, b.ID}); !slices.Equal(got, want) {
		t.Errorf("FindByAuthenticator = %v, want %v", got, want)
	}
	_, err = s.AddRegistration(ctx, reg("carol", "piv-1", "9a"), 5, false)
	wantErr(t, "shared authenticator for carol without sharing", err, store.ErrRegisteredToOther)
}

func testFind(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := add(t, s, reg("alice", "piv-1", "9a"))
	c := add(t, s, reg("alice", "piv-1", "9c"))
	add(t, s, reg("alice", "piv-10", "9a")) // a prefix of another id must not match
	add(t, s, reg("bob", "piv-2", "9a"))
	found, err := s.FindByAuthenticator(ctx, "piv-1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedCopy(ids(found)), sortedCopy([]string{a.ID, c.ID}); !slices.Equal(got, want) {
		t.Errorf("FindByAuthenticator(piv-1) = %v, want %v", got, want)
	}
	for _, r := range found {
		if r.User != "alice" || r.AuthenticatorID != "piv-1" {
			t.Errorf("found %+v", r)
		}
		if r.ID == a.ID && !r.Default {
			t.Errorf("FindByAuthenticator does not mark the default")
		}
	}
	found, err = s.FindByAuthenticator(ctx, "piv-none")
	if err != nil || len(found) != 0 {
		t.Errorf("FindByAuthenticator(unknown) = %v, %v; want none", found, err)
	}
}

func testIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := add(t, s, reg("alice", "piv-1", "9a"))
	bob := add(t, s, reg("bob", "piv-2", "9a"))
	_, err := s.Registration(ctx, "bob", a.ID)
	wantErr(t, "Registration(bob, alice's id)", err, store.ErrNotFound)
	_, err = s.RemoveRegistration(ctx, "bob", a.ID)
	wantErr(t, "RemoveRegistration(bob, alice's id)", err, store.ErrNotFound)
	wantErr(t, "SetDefault(bob, alice's id)", s.SetDefault(ctx, "bob", a.ID), store.ErrNotFound)
	wantErr(t, "MarkUsed(bob, alice's id)", s.MarkUsed(ctx, "bob", a.ID, time.Now(), 0), store.ErrNotFound)
	if got, want := ids(list(t, s, "alice")), []string{a.ID}; !slices.Equal(got, want) {
		t.Errorf("alice's registrations = %v, want %v", got, want)
	}
	if d := defaultOf(t, s, "bob"); d != bob.ID {
		t.Errorf("bob's default = %q, want his own %q", d, bob.ID)
	}
}

func testMarkUsed(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := reg("alice", "fido-1", "Y3JlZA")
	r.SignCount = 10
	a := add(t, s, r)
	when := time.Now().Add(-time.Minute)
	if err := s.MarkUsed(ctx, "alice", a.ID, when, 11); err != nil {
		t.Fatalf("MarkUsed(11): %v", err)
	}
	got, err := s.Registration(ctx, "alice", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SignCount != 11 || !got.LastUsedAt.Equal(store.Timestamp(when)) {
		t.Errorf("after MarkUsed: count %d, last used %v; want 11, %v", got.SignCount, got.LastUsedAt, store.Timestamp(when))
	}
	for _, c := range []uint32{11, 5} {
		err := s.MarkUsed(ctx, "alice", a.ID, time.Now(), c)
		wantErr(t, "MarkUsed with a counter that did not increase", err, store.ErrCounterRegressed)
	}
	got, _ = s.Registration(ctx, "alice", a.ID)
	if got.SignCount != 11 || !got.LastUsedAt.Equal(store.Timestamp(when)) {
		t.Errorf("refused MarkUsed changed the record: count %d, last used %v", got.SignCount, got.LastUsedAt)
	}
	later := when.Add(30 * time.Second)
	if err := s.MarkUsed(ctx, "alice", a.ID, later, 0); err != nil {
		t.Fatalf("MarkUsed(0): %v", err)
	}
	got, _ = s.Registration(ctx, "alice", a.ID)
	if got.SignCount != 11 || !got.LastUsedAt.Equal(store.Timestamp(later)) {
		t.Errorf("after MarkUsed(0): count %d, last used %v; want 11, %v", got.SignCount, got.LastUsedAt, store.Timestamp(later))
	}
	wantErr(t, "MarkUsed(unknown)", s.MarkUsed(ctx, "alice", "nope", later, 0), store.ErrNotFound)
}
