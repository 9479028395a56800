// Package boltstore is the embedded registry: store.Store and
// store.DeviceState in one bbolt file (by default under /var/lib/hwauthd/).
//
// Every write is one bbolt Update transaction, fsync'd before it returns, so
// the file survives a crash or power cut at any point. Writers are
// serialized by bbolt, which makes AddRegistration's check-then-insert
// atomic; bbolt's file lock keeps a second process out. A corrupt or
// unreadable file is reported (store.ErrCorrupt, naming the path) and never
// replaced.
//
// Open takes the same time whatever the registry's size: it reads the meta
// pages and the schema, and runs the full consistency check (bbolt's page
// check and the store's index check, which read the whole file) only when
// the file was not closed cleanly: after a crash, a power cut, or a write
// by another program. Close records the transaction id it closed at; a file
// whose last transaction is another one is checked in full.
//
// Layout (keys joined with a NUL byte, which names may not contain):
//
//	meta       "schema" → decimal schema version
//	           "clean"  → decimal id of the transaction of the last clean
//	                      close (absent while a process has the file open)
//	regs       user, id → registration record (JSON, see record.go)
//	byauth     authenticator id, key id, user, id → empty (index)
//	defaults   user → id of the default registration
//	links      identity → link record (JSON)
//	userlinks  user, identity → empty (index)
//	remember   user, key → value
//	cards      card id → blob (device state)
package boltstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"

	"github.com/hwauthd/hwauthd/store"
)

// SchemaVersion is the layout version this package writes and reads.
const SchemaVersion = 1

// Bucket names.
var (
	bucketMeta      = []byte("meta")
	bucketRegs      = []byte("regs")
	bucketByAuth    = []byte("byauth")
	bucketDefaults  = []byte("defaults")
	bucketLinks     = []byte("links")
	bucketUserLinks = []byte("userlinks")
	bucketRemember  = []byte("remember")
	bucketCards     = []byte("cards")
	allBuckets      = [][]byte{bucketMeta, bucketRegs, bucketByAuth, bucketDefaults,
		bucketLinks, bucketUserLinks, bucketRemember, bucketCards}
	keySchema = []byte("schema")
	keyClean  = []byte("clean")
)

// ErrLocked means another process (another hwauthd) holds the store's file.
var ErrLocked = errors.New("store file is in use by another process")

// Options tune Open. The zero value is the default.
type Options struct {
	// LockTimeout is how long Open waits for the file lock held by another
	// process before giving up with ErrLocked; 0 means 2 seconds.
	LockTimeout time.Duration
	// SkipCheck skips the full consistency check at open (bbolt's page
	// check and the index check), which reads the whole file, even when the
	// file was not closed cleanly.
	SkipCheck bool
}

// Store is the bbolt registry. It implements store.Store and
// store.DeviceState and is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
	// checked is whether Open ran the full consistency check.
	checked bool
	// decoded memoizes the decoding of registration records.
	decoded decodedRecords
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.DeviceState = (*Store)(nil)
)

// Open opens the store at path, creating it (mode 0600, parent directory
// 0700 when missing) when it does not exist. An existing file that is not a
// valid store is refused with store.ErrCorrupt; a newer schema with
// store.ErrSchemaTooNew; a file locked by another process with ErrLocked;
// a directory or file that other users can write with ErrNotPrivate.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if err := checkPrivate(path); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := create(path); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return openExisting(path, opts)
}

// openExisting opens a file that exists and checks it.
func openExisting(path string, opts Options) (*Store, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	} else if fi.Size() == 0 {
		// bbolt would initialize an empty file: that would hide a
		// truncation. Stores are created whole by create().
		return nil, fmt.Errorf("open store %s: %w: file is empty", path, store.ErrCorrupt)
	}
	if err := probe(path, opts.LockTimeout); err != nil {
		return nil, err
	}
	db, err := openBolt(path, opts.LockTimeout, false)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path}
	if err := s.checkOpen(!opts.SkipCheck); err != nil {
		db.Close()
		return nil, err
	}
	// From here until Close the file is in use: a crash leaves it without
	// the clean mark, and the next Open checks it in full.
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyClean) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// probe opens the file read-only, which reads only the meta pages, and
// refuses a file shorter than its meta page says. A read-write open reads the
// freelist page at once, and on a truncated file that page may lie past the
// end of the file: reading it faults (SIGBUS) instead of failing.
func probe(path string, timeout time.Duration) error {
	db, err := openBolt(path, timeout, true)
	if err != nil {
		return err
	}
	defer db.Close()
	s := &Store{db: db, path: path}
	return db.View(s.checkSize)
}

// openBolt opens the bbolt file without creating it and classifies errors.
func openBolt(path string, timeout time.Duration, readOnly bool) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		// bbolt may panic (or fault) on some malformed files instead of
		// erroring; the file is then left open until the process ends.
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("open store %s: %w: %v", path, store.ErrCorrupt, p)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, OpenFile: openNoCreate, ReadOnly: readOnly})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolterr.ErrTimeout):
		return nil, fmt.Errorf("open store %s: %w (is another hwauthd running?)", path, ErrLocked)
	case errors.Is(err, os.ErrPermission), errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("open store %s: %w", path, err)
	default:
		return nil, fmt.Errorf("open store %s: %w: %w", path, store.ErrCorrupt, err)
	}
}

// openNoCreate opens the file read-write without O_CREATE, so that a file
// removed under us is not recreated empty.
func openNoCreate(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag&^os.O_CREATE, perm)
}

// create makes a new store at path atomically: a complete file is written
// beside it and renamed into place, so a crash never leaves a half-made file
// at path.
func create(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create store directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	os.Remove(tmpName) // bbolt creates it fresh with mode 0600
	defer os.Remove(tmpName)
	db, err := bolt.Open(tmpName, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	err = db.Update(initSchema)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create store %s: %w", path, err)
	}
	if err := os.Link(tmpName, path); err != nil {
		// Link, not Rename: it fails if another process created path
		// meanwhile, and then we open theirs.
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		return fmt.Errorf("create store %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory so a new entry in it survives a power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// initSchema creates every bucket and the schema version.
func initSchema(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
		return err
	}
	return markClean(tx)
}

// markClean records in tx that the file is consistent as of tx: a file whose
// last transaction carries this mark was closed cleanly.
func markClean(tx *bolt.Tx) error {
	return tx.Bucket(bucketMeta).Put(keyClean, strconv.AppendInt(nil, int64(tx.ID()), 10))
}

// closedCleanly tells whether the last transaction of the file was the clean
// mark of Close (or of the file's creation).
func closedCleanly(tx *bolt.Tx) bool {
	id, err := strconv.ParseInt(string(tx.Bucket(bucketMeta).Get(keyClean)), 10, 64)
	return err == nil && id == int64(tx.ID())
}

// checkOpen verifies the schema version and, when full and the file was not
// closed cleanly, bbolt's page structure and the store's own indexes.
func (s *Store) checkOpen(full bool) error {
	return s.db.View(func(tx *bolt.Tx) (err error) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if p := recover(); p != nil {
				err = s.corrupt(fmt.Errorf("%v", p))
			}
		}()
		if err := s.checkSize(tx); err != nil {
			return err
		}
		if err := s.checkSchema(tx); err != nil {
			return err
		}
		if !full || closedCleanly(tx) {
			return nil
		}
		s.checked = true
		for err := range tx.Check() {
			return s.corrupt(err)
		}
		if err := verify(tx); err != nil {
			return s.corrupt(err)
		}
		return nil
	})
}

// checkSize refuses a file shorter than its own meta page says (a truncated
// file), which bbolt would otherwise fault on when reading past the end.
func (s *Store) checkSize(tx *bolt.Tx) error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	if fi.Size() < tx.Size() {
		return s.corrupt(fmt.Errorf("file is %d bytes, its header says %d (truncated)", fi.Size(), tx.Size()))
	}
	return nil
}

// checkSchema refuses a file without our buckets or with a newer version.
func (s *Store) checkSchema(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return s.corrupt(errors.New("not an hwauthd store (no meta bucket)"))
	}
	v, err := strconv.Atoi(string(meta.Get(keySchema)))
	if err != nil || v < 1 {
		return s.corrupt(fmt.Errorf("bad schema version %q", meta.Get(keySchema)))
	}
	if v > SchemaVersion {
		return fmt.Errorf("open store %s: %w: version %d, this hwauthd knows up to %d",
			s.path, store.ErrSchemaTooNew, v, SchemaVersion)
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return s.corrupt(fmt.Errorf("bucket %s missing", name))
		}
	}
	return nil
}

// corrupt wraps cause as store.ErrCorrupt naming the file.
func (s *Store) corrupt(cause error) error {
	return fmt.Errorf("store %s: %w: %w", s.path, store.ErrCorrupt, cause)
}

// Path returns the file the store is kept in.
func (s *Store) Path() string { return s.path }

// Close marks the file clean, closes it and releases its lock.
func (s *Store) Close() error {
	err := s.db.Update(markClean)
	if errors.Is(err, bolterr.ErrDatabaseNotOpen) {
		return nil // closed before
	}
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	return err
}
