package boltstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hwauthd/hwauthd/store"
)

func TestCards(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hwauthd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutCard(ctx, "vsc-1", []byte("blob-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCard(ctx, "vsc-2", []byte("blob-2")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if b, err := s.Card(ctx, "vsc-1"); err != nil || string(b) != "blob-1" {
		t.Errorf("Card after reopen = %q, %v", b, err)
	}
	all, err := s.Cards(ctx)
	if err != nil || len(all) != 2 || string(all["vsc-2"]) != "blob-2" {
		t.Errorf("Cards = %q, %v", all, err)
	}
	if err := s.DeleteCard(ctx, "vsc-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Card(ctx, "vsc-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Card(deleted) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteCard(ctx, "vsc-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteCard(deleted) = %v, want ErrNotFound", err)
	}
	boom := errors.New("boom")
	if err := s.UpdateCard(ctx, "vsc-2", func([]byte) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("UpdateCard with failing fn = %v", err)
	}
	if b, _ := s.Card(ctx, "vsc-2"); string(b) != "blob-2" {
		t.Errorf("failed UpdateCard changed the card: %q", b)
	}
	if err := s.UpdateCard(ctx, "vsc-2", func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Card(ctx, "vsc-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateCard returning nil did not delete: %v", err)
	}
}

func TestUpdateCardSerializes(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if err := s.PutCard(ctx, "vsc-1", []byte("0")); err != nil {
		t.Fatal(err)
	}
	const n = 30
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			err := s.UpdateCard(ctx, "vsc-1", func(old []byte) ([]byte, error) {
				var v int
				fmt.Sscan(string(old), &v)
				return fmt.Append(nil, v+1), nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if b, _ := s.Card(ctx, "vsc-1"); string(b) != fmt.Sprint(n) {
		t.Errorf("after %d concurrent increments the card holds %q", n, b)
	}
}
