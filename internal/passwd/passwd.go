// Package passwd answers account lookups from /etc/passwd itself when NSS
// would answer them from that file first, without NSS's cost per call
// (through cgo: a check of nsswitch.conf, then opening, reading and parsing
// /etc/passwd again on every lookup).
//
// It answers only what NSS would answer the same: the name or uid is on a
// line of /etc/passwd, nsswitch.conf's passwd line names "files" first, and
// every line of the file is one this package reads exactly (seven fields,
// numeric uid and gid, no NUL byte: no comments, blank or +/- lines, which
// it leaves to NSS). Anything else — a name or uid not in the file (a later source such
// as systemd or LDAP may know it), a file it does not read exactly, another
// first source — is "ask NSS" (ok false). Both files are checked on every
// lookup (one stat each) and read again whenever either changed (device,
// inode, size, modification or change time), so an answer is never older
// than the files. A version changed less than racyWindow before it was read
// is answered but not kept: a file rewritten in place twice within one tick
// of the file system's clock, at the same size, keeps its identity, and
// only a version older than that tick is told apart from any later one.
package passwd

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The files NSS reads for the passwd database.
const (
	PasswdFile   = "/etc/passwd"
	NSSwitchFile = "/etc/nsswitch.conf"
)

// Files answers from a passwd file under the nsswitch.conf that governs it.
// The zero value is not usable; use New or System. Safe for concurrent use.
type Files struct {
	passwd, nsswitch string

	// stat identifies a file's version (identify; tests replace it).
	stat func(path string) (identity, error)

	mu   sync.Mutex
	snap *snapshot
}

// racyWindow is how long after its last change a file's version is not
// kept: more than the coarsest timestamp granularity of a Linux file system
// for /etc (1 s on ext3, 2 s on FAT) plus the lag of the kernel's coarse
// clock. A change made after the read then has a later change time than
// the version kept (unless the wall clock is set back).
const racyWindow = 3 * time.Second

// New answers from the passwd file at passwd, governed by the nsswitch.conf
// at nsswitch.
func New(passwd, nsswitch string) *Files {
	return &Files{passwd: passwd, nsswitch: nsswitch, stat: identify}
}

// System answers from the machine's /etc/passwd and /etc/nsswitch.conf.
func System() *Files { return New(PasswdFile, NSSwitchFile) }

// UID returns the uid of the account name; ok false means ask NSS.
func (f *Files) UID(name string) (uid uint32, ok bool) {
	s := f.current()
	if s == nil {
		return 0, false
	}
	uid, ok = s.uids[name]
	return uid, ok
}

// Name returns the name of the first account with uid, as getpwuid does;
// ok false means ask NSS.
func (f *Files) Name(uid uint32) (name string, ok bool) {
	s := f.current()
	if s == nil {
		return "", false
	}
	name, ok = s.names[uid]
	return name, ok
}

// identity is what tells a file's versions apart.
type identity struct {
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
}

// identify stats a file.
func identify(path string) (identity, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return identity{}, err
	}
	return identity{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}, nil
}

// snapshot is the accounts of one version of the two files. Its maps are
// nil when that version leaves every lookup to NSS (another source first,
// or a file this package does not read exactly): kept like any other, it
// spares reading the files again on every lookup.
type snapshot struct {
	passwd, nsswitch identity
	uids             map[string]uint32
	names            map[uint32]string
}

// current returns the snapshot of the files as they are now, reading them
// again when either changed; nil when NSS must answer.
func (f *Files) current() *snapshot {
	p, err := f.stat(f.passwd)
	if err != nil {
		return nil
	}
	n, err := f.stat(f.nsswitch)
	if err != nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.snap != nil && f.snap.passwd == p && f.snap.nsswitch == n {
		return f.snap
	}
	f.snap = nil
	readAt := time.Now()
	s := f.load()
	if s == nil {
		return nil
	}
	// Used only when neither file changed while it was read: the snapshot
	// is then exactly the version its identities name.
	if s.passwd != p || s.nsswitch != n {
		return nil
	}
	// Kept only when no later version can share its identities.
	if settled(p, readAt) && settled(n, readAt) {
		f.snap = s
	}
	return s
}

// settled reports whether the version id was last changed at least
// racyWindow before t. The change time is the kernel's (utimensat cannot
// set it), and any change, of the data or the times, moves it.
func settled(id identity, t time.Time) bool {
	return time.Unix(id.ctime.Unix()).Before(t.Add(-racyWindow))
}

// load reads both files; nil when one does not read (not kept: nothing
// says which version failed).
func (f *Files) load() *snapshot {
	conf, err := os.ReadFile(f.nsswitch)
	if err != nil {
		return nil
	}
	s := &snapshot{}
	if FilesFirst(conf) {
		text, err := os.ReadFile(f.passwd)
		if err != nil {
			return nil
		}
		if uids, names, ok := Parse(text); ok {
			s.uids, s.names = uids, names
		}
	}
	if s.passwd, err = f.stat(f.passwd); err != nil {
		return nil
	}
	if s.nsswitch, err = f.stat(f.nsswitch); err != nil {
		return nil
	}
	return s
}

// FilesFirst reports whether an nsswitch.conf has exactly one passwd line,
// its first source is "files" and it has no [STATUS=action] items (which
// could make NSS go on past an account found in the file). It reads the
// file as glibc does (checked against glibc 2.36): a line's database is
// its first word, up to a C space or a colon, matched exactly ("PASSWD" is
// another database; "passwd sss", without the colon, is a passwd line);
// the sources follow after spaces and colons, split at ASCII whitespace
// only; '#' starts no comment inside a line ("passwd: files#x" names a
// source "files#x", not files; a line starting with '#' names no known
// database).
func FilesFirst(conf []byte) bool {
	found := false
	for line := range bytes.Lines(conf) {
		line = bytes.TrimLeftFunc(line, cSpace)
		end := bytes.IndexFunc(line, func(r rune) bool { return cSpace(r) || r == ':' })
		if end < 0 || string(line[:end]) != "passwd" {
			continue
		}
		sources := bytes.TrimLeftFunc(line[end:], func(r rune) bool { return cSpace(r) || r == ':' })
		if found || bytes.IndexByte(sources, '[') >= 0 {
			return false
		}
		fields := bytes.FieldsFunc(sources, cSpace)
		if len(fields) == 0 || string(fields[0]) != "files" {
			return false
		}
		found = true
	}
	return found
}

// cSpace is C's isspace in the C locale: glibc splits nsswitch.conf's
// words there and nowhere else (not at U+00A0 or U+0085, as
// unicode.IsSpace would).
func cSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// Parse reads a passwd file: each account's uid by name, and the first
// account's name by uid. ok is false when a line is not exactly
// name:password:uid:gid:gecos:home:shell with a non-empty name and numeric
// ids and no NUL byte (NSS would read such a file differently, or the name
// twice).
func Parse(text []byte) (uids map[string]uint32, names map[uint32]string, ok bool) {
	uids = map[string]uint32{}
	names = map[uint32]string{}
	for line := range bytes.Lines(text) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		if bytes.IndexByte(line, 0) >= 0 {
			return nil, nil, false // C reads the line only up to the NUL
		}
		fields := bytes.Split(line, []byte(":"))
		if len(fields) != 7 || len(fields[0]) == 0 || !plainName(fields[0]) {
			return nil, nil, false
		}
		uid, err := strconv.ParseUint(string(fields[2]), 10, 32)
		if err != nil || !digits(fields[2]) {
			return nil, nil, false
		}
		if _, err := strconv.ParseUint(string(fields[3]), 10, 32); err != nil || !digits(fields[3]) {
			return nil, nil, false
		}
		name := string(fields[0])
		if _, dup := uids[name]; dup {
			return nil, nil, false
		}
		uids[name] = uint32(uid)
		if _, seen := names[uint32(uid)]; !seen {
			names[uint32(uid)] = name
		}
	}
	return uids, names, true
}

// plainName reports whether a name has no byte NSS's files parser treats
// specially: no leading + or - (NIS compat entries), no whitespace or
// control bytes, no # (comments).
func plainName(b []byte) bool {
	if b[0] == '+' || b[0] == '-' {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// digits reports whether b is only ASCII digits (ParseUint also takes none
// other, but says so for an empty field only by error).
func digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
