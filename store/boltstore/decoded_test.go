package boltstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/store"
	"github.com/hwauthd/hwauthd/store/storetest"
)

// TestReadsSeeEveryChange: reads go through the memo of decoded records, and
// each kind of write is seen by the next read, which comes from the memo for
// the records it did not change.
func TestReadsSeeEveryChange(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	reg := func(i int) store.Registration {
		r := storetest.PreloadRegistration(i)
		r.User = "alice"
		return r
	}
	// list reads alice's registrations twice (the second time every record
	// comes from the memo) and checks that both reads agree.
	list := func(step string) []store.Registration {
		t.Helper()
		first, err := s.Registrations(ctx, "alice")
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		again, err := s.Registrations(ctx, "alice")
		if err != nil || fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("%s: second read %+v (%v), first %+v", step, again, err, first)
		}
		return first
	}
	a, err := s.AddRegistration(ctx, reg(1), 5, false)
	if err != nil {
		t.Fatal(err)
	}
	if rs := list("after the first add"); len(rs) != 1 || !rs[0].Default || !rs[0].LastUsedAt.IsZero() {
		t.Fatalf("after the first add: %+v", rs)
	}
	b, err := s.AddRegistration(ctx, reg(2), 5, false)
	if err != nil {
		t.Fatal(err)
	}
	if rs := list("after the second add"); len(rs) != 2 || rs[1].ID != b.ID || rs[1].Default {
		t.Fatalf("after the second add: %+v", rs)
	}
	used := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.MarkUsed(ctx, "alice", a.ID, used, 0); err != nil {
		t.Fatal(err)
	}
	if rs := list("after MarkUsed"); !rs[0].LastUsedAt.Equal(used) {
		t.Fatalf("after MarkUsed: %+v, want last used %v", rs[0], used)
	}
	if r, err := s.Registration(ctx, "alice", a.ID); err != nil || !r.LastUsedAt.Equal(used) {
		t.Fatalf("Registration after MarkUsed: %+v, %v", r, err)
	}
	if err := s.SetDefault(ctx, "alice", b.ID); err != nil {
		t.Fatal(err)
	}
	if rs := list("after SetDefault"); rs[0].Default || !rs[1].Default {
		t.Fatalf("after SetDefault: %+v, want the second one default", rs)
	}
	if _, err := s.RemoveRegistration(ctx, "alice", b.ID); err != nil {
		t.Fatal(err)
	}
	if rs := list("after the removal"); len(rs) != 1 || rs[0].ID != a.ID || !rs[0].Default {
		t.Fatalf("after the removal: %+v, want the first one alone and default", rs)
	}
	if rs, err := s.FindByAuthenticator(ctx, b.AuthenticatorID); err != nil || len(rs) != 0 {
		t.Fatalf("FindByAuthenticator of the removed one: %+v, %v", rs, err)
	}
	if _, err := s.RemoveRegistration(ctx, "alice", a.ID); err != nil {
		t.Fatal(err)
	}
	if rs := list("after removing all"); len(rs) != 0 {
		t.Fatalf("after removing all: %+v", rs)
	}
}

// TestDecodedRecordsAreCopies: a caller changing a registration's bytes
// changes neither the memo nor another caller's copy.
func TestDecodedRecordsAreCopies(t *testing.T) {
	var d decodedRecords
	v, err := encodeRegistration(store.Registration{ID: "r1", User: "alice", AuthenticatorID: "piv-1",
		PublicKey: []byte{1, 2, 3}, Certificate: []byte{4}, CredentialID: []byte{5}, CreatedAt: time.Unix(1, 0)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r, seq, err := d.decode(v)
		if err != nil || seq != 1 || string(r.PublicKey) != "\x01\x02\x03" || string(r.Certificate) != "\x04" || string(r.CredentialID) != "\x05" {
			t.Fatalf("decode %d: %+v, %d, %v", i, r, seq, err)
		}
		r.PublicKey[0], r.Certificate[0], r.CredentialID[0] = 9, 9, 9
	}
}

// TestDecodedRecordsBytesBounded: records with large certificates (their
// size comes from the card) are kept within decodedBytes, and each is
// still decoded right.
func TestDecodedRecordsBytesBounded(t *testing.T) {
	var d decodedRecords
	for i := range 300 {
		cert := make([]byte, 40<<10)
		cert[0] = byte(i)
		v, err := encodeRegistration(store.Registration{ID: fmt.Sprint("r", i), User: "alice", AuthenticatorID: "piv-1",
			Certificate: cert, CreatedAt: time.Unix(1, 0)}, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if r, _, err := d.decode(v); err != nil || r.ID != fmt.Sprint("r", i) || len(r.Certificate) != len(cert) || r.Certificate[0] != byte(i) {
			t.Fatalf("decode %d: %v", i, err)
		}
	}
	held := 0
	for k, e := range d.m {
		held += heldBytes([]byte(k), e.reg)
	}
	if held > decodedBytes || held != d.bytes || len(d.m) == 0 {
		t.Fatalf("memo holds %d records of %d bytes (counted %d), want some and at most %d bytes", len(d.m), held, d.bytes, decodedBytes)
	}
}

// TestDecodedRecordsBounded: the memo keeps at most decodedSize records, and
// a record that does not decode is refused every time, never kept.
func TestDecodedRecordsBounded(t *testing.T) {
	var d decodedRecords
	for i := range decodedSize + 10 {
		v, err := encodeRegistration(store.Registration{ID: fmt.Sprint("r", i), User: "alice", AuthenticatorID: "piv-1",
			CreatedAt: time.Unix(1, 0)}, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if r, seq, err := d.decode(v); err != nil || seq != uint64(i) || r.ID != fmt.Sprint("r", i) {
			t.Fatalf("decode %d: %+v, %d, %v", i, r, seq, err)
		}
	}
	if n := len(d.m); n != decodedSize {
		t.Fatalf("memo holds %d records, want %d", n, decodedSize)
	}
	bad := []byte(`{"id":"x","user":"alice"}`)
	for range 2 {
		if _, _, err := d.decode(bad); err == nil {
			t.Fatal("a record without authenticator and time decoded")
		}
	}
	if _, ok := d.m[string(bad)]; ok {
		t.Fatal("the memo kept a record that does not decode")
	}
}
