package storetest

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/hwauthd/hwauthd/store"
)

func testLinks(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, id := range []string{"upn:alice@example.com", "email:alice@home.example"} {
		if err := s.AddLink(ctx, "alice", 1001, id, "root"); err != nil {
			t.Fatalf("AddLink(%s): %v", id, err)
		}
	}
	if err := s.AddLink(ctx, "alice", 1001, "upn:alice@example.com", "root"); err != nil {
		t.Errorf("AddLink again to the same user: %v", err)
	}
	wantErr(t, "AddLink to another user", s.AddLink(ctx, "bob", 1002, "upn:alice@example.com", "root"), store.ErrAlreadyLinked)
	// alice's account created again (uid 1003) and the identity linked
	// again: the link takes the new uid.
	if err := s.AddLink(ctx, "alice", 1003, "email:alice@home.example", "root"); err != nil {
		t.Fatal(err)
	}
	if l, err := s.LinkOf(ctx, "email:alice@home.example"); err != nil || l.UID == nil || *l.UID != 1003 {
		t.Fatalf("linked again: %+v %v", l, err)
	}
	if err := s.AddLink(ctx, "alice", 1001, "email:alice@home.example", "root"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "AddLink(empty identity)", s.AddLink(ctx, "bob", 1002, "", "root"), store.ErrInvalid)
	links, err := s.Links(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range links {
		if l.User != "alice" || l.UID == nil || *l.UID != 1001 || l.CreatedBy != "root" || l.CreatedAt.IsZero() {
			t.Errorf("link %+v", l)
		}
		got = append(got, l.Identity)
	}
	if want := []string{"email:alice@home.example", "upn:alice@example.com"}; !slices.Equal(got, want) {
		t.Errorf("Links = %v, want %v", got, want)
	}
	if l, err := s.LinkOf(ctx, "upn:alice@example.com"); err != nil || l.User != "alice" || l.UID == nil || *l.UID != 1001 {
		t.Errorf("LinkOf = %+v, %v; want alice, uid 1001", l, err)
	}
	_, err = s.LinkOf(ctx, "upn:nobody@example.com")
	wantErr(t, "LinkOf(unknown)", err, store.ErrNotFound)
	wantErr(t, "RemoveLink by another user", s.RemoveLink(ctx, "bob", "upn:alice@example.com"), store.ErrNotFound)
	if err := s.RemoveLink(ctx, "alice", "upn:alice@example.com"); err != nil {
		t.Fatalf("RemoveLink: %v", err)
	}
	_, err = s.LinkOf(ctx, "upn:alice@example.com")
	wantErr(t, "LinkOf(removed)", err, store.ErrNotFound)
	wantErr(t, "RemoveLink again", s.RemoveLink(ctx, "alice", "upn:alice@example.com"), store.ErrNotFound)
	if err := s.AddLink(ctx, "bob", 1002, "upn:alice@example.com", "root"); err != nil {
		t.Errorf("AddLink after removal: %v", err)
	}
	if links, _ := s.Links(ctx, "alice"); len(links) != 1 {
		t.Errorf("alice has %d links, want 1", len(links))
	}
}

func testRemember(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := add(t, s, reg("alice", "piv-1", "9a"))
	if err := s.AddLink(ctx, "alice", 1001, "upn:alice@example.com", "root"); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"last_authenticator": "piv-1", "last_reader": "Test PCD 00 00"} {
		if err := s.Remember(ctx, "alice", k, v); err != nil {
			t.Fatalf("Remember(%s): %v", k, err)
		}
	}
	if err := s.Remember(ctx, "alice", "last_authenticator", "piv-2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remember(ctx, "bob", "last_authenticator", "fido-9"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Recall(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"last_authenticator": "piv-2", "last_reader": "Test PCD 00 00"}; !maps.Equal(got, want) {
		t.Errorf("Recall = %v, want %v", got, want)
	}
	if err := s.Forget(ctx, "alice"); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	got, err = s.Recall(ctx, "alice")
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("Recall after Forget = %#v, %v; want empty map", got, err)
	}
	if got, _ := s.Recall(ctx, "bob"); got["last_authenticator"] != "fido-9" {
		t.Errorf("Forget(alice) touched bob: %v", got)
	}
	if _, err := s.Registration(ctx, "alice", a.ID); err != nil {
		t.Errorf("Forget removed a registration: %v", err)
	}
	if l, err := s.LinkOf(ctx, "upn:alice@example.com"); err != nil || l.User != "alice" {
		t.Errorf("Forget removed a link: %+v, %v", l, err)
	}
	if err := s.Forget(ctx, "nobody"); err != nil {
		t.Errorf("Forget(nobody): %v", err)
	}
}

func testConcurrentLimit(t *testing.T, s store.Store) {
	const n, limit = 20, 5
	errs := race(n, func(i int) error {
		_, err := s.AddRegistration(context.Background(), reg("alice", "piv-"+string(rune('A'+i)), "9a"), limit, false)
		return err
	})
	ok, refused := tally(t, errs, store.ErrLimitReached)
	if ok != limit || refused != n-limit {
		t.Errorf("%d concurrent registrations: %d succeeded, %d refused; want %d, %d", n, ok, refused, limit, n-limit)
	}
	if c, _ := s.CountRegistrations(context.Background(), "alice"); c != limit {
		t.Errorf("count = %d, want %d", c, limit)
	}
	if defaultOf(t, s, "alice") == "" {
		t.Errorf("no default after concurrent registrations")
	}
}

func testConcurrentSameAuthenticator(t *testing.T, s store.Store) {
	const n = 10
	errs := race(n, func(i int) error {
		_, err := s.AddRegistration(context.Background(), reg("user"+string(rune('a'+i)), "piv-shared", "9a"), 5, false)
		return err
	})
	ok, refused := tally(t, errs, store.ErrRegisteredToOther)
	if ok != 1 || refused != n-1 {
		t.Errorf("%d users racing for one card: %d succeeded, %d refused; want 1, %d", n, ok, refused, n-1)
	}
	found, err := s.FindByAuthenticator(context.Background(), "piv-shared")
	if err != nil || len(found) != 1 {
		t.Errorf("FindByAuthenticator = %d registrations, %v; want 1", len(found), err)
	}
}
