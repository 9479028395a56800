package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/hwauthd/hwauthd/store"
)

// memState is a device-local card store in memory, beside a registry that
// holds no cards (PostgreSQL): what store.ForgetCard sees in a fleet.
type memState struct {
	mu    sync.Mutex
	cards map[string][]byte
}

func (m *memState) PutCard(_ context.Context, id string, blob []byte) error {
	return m.UpdateCard(context.Background(), id, func([]byte) ([]byte, error) { return blob, nil })
}

func (m *memState) Card(_ context.Context, id string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.cards[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return b, nil
}

func (m *memState) Cards(context.Context) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range m.cards {
		out[k] = v
	}
	return out, nil
}

func (m *memState) DeleteCard(_ context.Context, id string) error {
	return m.UpdateCard(context.Background(), id, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, store.ErrNotFound
		}
		return nil, nil
	})
}

func (m *memState) UpdateCard(_ context.Context, id string, fn func(old []byte) ([]byte, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cards == nil {
		m.cards = map[string][]byte{}
	}
	blob, err := fn(m.cards[id])
	if err != nil {
		return err
	}
	if blob == nil {
		delete(m.cards, id)
	} else {
		m.cards[id] = blob
	}
	return nil
}

// testForgetCard: store.ForgetCard removes every user's registrations of a
// deleted virtual card, moving defaults, and the card's record; run again
// it finds nothing left to do. A store that is also a DeviceState (the
// embedded one) is its own card store, and does it in one transaction.
func testForgetCard(t *testing.T, s store.Store) {
	ctx := context.Background()
	state, ok := s.(store.DeviceState)
	if !ok {
		state = &memState{}
	}
	if err := state.PutCard(ctx, "c1", []byte(`{"id":"c1"}`)); err != nil {
		t.Fatal(err)
	}
	vsc := reg("alice", "vsc-c1", "9a")
	vsc.Kind, vsc.Backend = store.KindVirtualSmartcard, store.BackendTPM
	a := add(t, s, vsc)
	other := add(t, s, reg("alice", "piv-a", "9a"))
	vsc.User = "bob"
	if _, err := s.AddRegistration(ctx, vsc, 5, true); err != nil {
		t.Fatal(err)
	}
	if defaultOf(t, s, "alice") != a.ID {
		t.Fatal("the card's registration is not alice's default")
	}
	removed, err := store.ForgetCard(ctx, s, state, "c1", "vsc-c1")
	if err != nil || len(removed) != 2 {
		t.Fatalf("ForgetCard = %+v, %v; want alice's and bob's registrations", removed, err)
	}
	for _, r := range removed {
		want := ""
		if r.Registration.User == "alice" {
			want = other.ID
		}
		if r.Default != want || defaultOf(t, s, r.Registration.User) != want {
			t.Errorf("%s's default after forgetting the card = %q, want %q", r.Registration.User, r.Default, want)
		}
	}
	if rs, err := s.FindByAuthenticator(ctx, "vsc-c1"); err != nil || len(rs) != 0 {
		t.Fatalf("registrations of the forgotten card: %+v, %v", rs, err)
	}
	if _, err := state.Card(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("card record after ForgetCard: %v", err)
	}
	if again, err := store.ForgetCard(ctx, s, state, "c1", "vsc-c1"); err != nil || len(again) != 0 {
		t.Fatalf("ForgetCard again = %+v, %v; want nothing left to do", again, err)
	}
}
