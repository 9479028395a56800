package boltstore

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/store"
)

func FuzzDecodeRegistration(f *testing.F) {
	good, err := encodeRegistration(store.Registration{ID: "abc", User: "alice", AuthenticatorID: "piv-1",
		KeyID: "9a", PublicKey: []byte{1, 2}, SignCount: 7, CreatedAt: time.Unix(1700000000, 5000).UTC()}, 3)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"x","user":"a\u0000b","authenticator_id":"p","created_at":"2024-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"id":"x","user":"u","authenticator_id":"p","created_at":"2024-01-01T00:00:00Z","sign_count":-1}`))
	f.Add([]byte(`null`))
	f.Add([]byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, seq, err := decodeRegistration(b)
		if err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if r.ID == "" || r.User == "" || r.AuthenticatorID == "" || r.CreatedAt.IsZero() {
			t.Fatalf("accepted a record without required fields: %+v", r)
		}
		again, err := encodeRegistration(r, seq)
		if err != nil {
			t.Fatal(err)
		}
		r2, seq2, err := decodeRegistration(again)
		if err != nil || seq2 != seq || r2.ID != r.ID || r2.User != r.User || !bytes.Equal(r2.PublicKey, r.PublicKey) ||
			!r2.CreatedAt.Equal(r.CreatedAt) || r2.SignCount != r.SignCount {
			t.Fatalf("round trip changed the record: %+v → %+v (%v)", r, r2, err)
		}
	})
}
