package boltstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNotPrivate means the store's directory or file can be written by users
// other than the daemon's: whoever can write them can register their card
// to anyone.
var ErrNotPrivate = errors.New("writable by other users")

// checkPrivate refuses a store whose directory, or file when it exists, can
// be written by a user other than the owner of this process and root: a
// group or other write bit, or another owner. The error names the path, its
// mode and owner, and what to do.
func checkPrivate(path string) error {
	for _, p := range []string{filepath.Dir(path), path} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		want := "0600"
		if fi.IsDir() {
			want = "0700"
		}
		if perm := fi.Mode().Perm(); perm&0o022 != 0 {
			return fmt.Errorf("refusing the store: %s has mode %04o and is %w; make it %s (chmod %s %s)", p, perm, ErrNotPrivate, want, want, p)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
			return fmt.Errorf("refusing the store: %s (mode %04o) is owned by uid %d, not by hwauthd's user (uid %d) or root, so it is %w; chown it to hwauthd's user", p, fi.Mode().Perm(), st.Uid, os.Geteuid(), ErrNotPrivate)
		}
	}
	return nil
}
