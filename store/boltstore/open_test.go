package boltstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hwauthd/hwauthd/store"
)

// fill adds registrations 0..n-1 (five per user, user0, user1, …) to s in
// one transaction per 10 000.
func fill(t testing.TB, s *Store, n int) {
	t.Helper()
	for lo := 0; lo < n; lo += 10000 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i := lo; i < min(n, lo+10000); i++ {
				r, err := store.Prepare(store.Registration{User: fmt.Sprintf("user%d", i/5),
					AuthenticatorID: fmt.Sprintf("piv-%d", i), KeyID: "9a",
					PublicKey: make([]byte, 91), Label: strings.Repeat("x", 20)}, 5)
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
			t.Fatal(err)
		}
	}
}

// validFile returns the path of a closed store holding some registrations.
func validFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hwauthd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, 2000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "hwauthd")
	path := filepath.Join(dir, "hwauthd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700 | os.ModeDir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode = %v, want %v", p, fi.Mode(), want)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.new-*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := validFile(t)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if n, err := s.CountRegistrations(context.Background(), "user3"); err != nil || n != 5 {
		t.Errorf("after reopen user3 has %d registrations (%v), want 5", n, err)
	}
}

func TestOpenLockedFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hwauthd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, err = Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open = %v, want ErrLocked naming %s", err, path)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v; the lock timeout is not honoured", d)
	}
}

// wantCorrupt checks that opening path fails with store.ErrCorrupt naming
// the path, and that the file was left exactly as it was.
func wantCorrupt(t *testing.T, path string) {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{LockTimeout: time.Second})
	if err == nil {
		s.Close()
		t.Fatalf("Open of a corrupt file succeeded")
	}
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open = %v, want ErrCorrupt naming %s", err, path)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Errorf("Open changed the corrupt file (%d bytes → %d)", len(before), len(after))
	}
}

func TestOpenGarbageIsCorrupt(t *testing.T) {
	for name, content := range map[string][]byte{
		"empty":  {},
		"text":   []byte(strings.Repeat("this is not a database\n", 2000)),
		"zeroes": make([]byte, 64<<10),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hwauthd.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			wantCorrupt(t, path)
		})
	}
}

func TestOpenTruncatedIsCorrupt(t *testing.T) {
	path := validFile(t)
	used := usedSize(t, path)
	for _, size := range []int64{100, 4096, 2 * 4096, 3 * 4096, used / 2, used - 4096} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			cut := filepath.Join(t.TempDir(), "hwauthd.db")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cut, b[:size], 0o600); err != nil {
				t.Fatal(err)
			}
			wantCorrupt(t, cut)
		})
	}
}

// usedSize returns how much of the bbolt file at path its pages use (the
// file may be longer: bbolt grows it in steps).
func usedSize(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

func TestOpenDamagedRecordIsCorrupt(t *testing.T) {
	path := validFile(t)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRegs).Put(key("user0", "bogus"), []byte("{not json"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantCorrupt(t, path)
}

func TestOpenNewerSchemaRefused(t *testing.T) {
	path := validFile(t)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(fmt.Sprint(SchemaVersion+1)))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{})
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
}

// TestCleanCloseSkipsTheFullCheck: a file closed cleanly opens without
// reading it whole; one written by another program since (a new
// transaction without the clean mark) is checked in full again.
func TestCleanCloseSkipsTheFullCheck(t *testing.T) {
	path := validFile(t)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.checked {
		t.Error("a cleanly closed file was checked in full")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketRemember).Put([]byte("x"), []byte("y")) })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.checked {
		t.Error("a file written since its clean close was not checked in full")
	}
}

// crashImage copies the file of an open store, as a crash or power cut at
// this moment would leave it on the disk (every commit is synced).
func crashImage(t *testing.T, s *Store) string {
	t.Helper()
	b, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hwauthd.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUncleanShutdownRunsTheFullCheck: a file left by a process that did not
// close it gets the full check at the next open, and a damaged record in it
// is reported as corrupt, the file left as it was.
func TestUncleanShutdownRunsTheFullCheck(t *testing.T) {
	s, err := Open(validFile(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fill(t, s, 100)
	clean := crashImage(t, s)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRegs).Put(key("user0", "torn"), []byte("{not json"))
	}); err != nil {
		t.Fatal(err)
	}
	damaged := crashImage(t, s)

	reopened, err := Open(clean, Options{})
	if err != nil {
		t.Fatalf("open after an unclean shutdown: %v", err)
	}
	if !reopened.checked {
		t.Error("the file of a process that did not close it was not checked in full")
	}
	reopened.Close()
	wantCorrupt(t, damaged)
}

// TestOpenRefusesAStoreOthersCanWrite (issue 13, item 8): a state directory
// or database that other users can write is refused, naming the path and
// its mode, before anything is read from it.
func TestOpenRefusesAStoreOthersCanWrite(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	path := filepath.Join(state, "hwauthd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, tc := range []struct {
		path string
		mode os.FileMode
	}{{state, 0o777}, {state, 0o770}, {path, 0o666}, {path, 0o620}} {
		good := os.FileMode(0o700)
		if tc.path == path {
			good = 0o600
		}
		if err := os.Chmod(tc.path, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path, Options{})
		want := fmt.Sprintf("%s has mode %04o", tc.path, tc.mode)
		if !errors.Is(err, ErrNotPrivate) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s at %04o: Open = %v, want ErrNotPrivate saying %q", tc.path, tc.mode, err, want)
		}
		if err := os.Chmod(tc.path, good); err != nil {
			t.Fatal(err)
		}
	}
	// Another user's directory, even at 0700.
	if os.Geteuid() == 0 {
		if err := os.Chown(state, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path, Options{}); !errors.Is(err, ErrNotPrivate) || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Errorf("a state directory owned by uid 65534: Open = %v", err)
		}
		if err := os.Chown(state, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("private again: %v", err)
	}
	s.Close()
}
