package passwd

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	good := "root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\nbob:*:1001:100:::"
	uids, names, ok := Parse([]byte(good))
	if !ok || len(uids) != 4 || uids["root"] != 0 || uids["toor"] != 0 || uids["alice"] != 1000 || uids["bob"] != 1001 {
		t.Fatalf("Parse(good) = %v, %v, %v", uids, names, ok)
	}
	if names[0] != "root" || names[1000] != "alice" || names[1001] != "bob" || len(names) != 3 {
		t.Fatalf("names = %v, want the first account of each uid", names)
	}
	for _, bad := range []string{
		"# comment\nroot:x:0:0:root:/root:/bin/bash\n",
		"root:x:0:0:root:/root:/bin/bash\n\nalice:x:1000:1000::/home/alice:/bin/sh\n",
		"+alice::::::\n",
		"-bob:x:1:1:::\n",
		"+:::::: \n",
		" root:x:0:0:root:/root:/bin/bash\n",
		"root:x:0:0:root:/root\n",
		"root:x:0:0:root:/root:/bin/bash:extra\n",
		"root:x:zero:0:root:/root:/bin/bash\n",
		"root:x:0:-1:root:/root:/bin/bash\n",
		"root:x::0:root:/root:/bin/bash\n",
		"root:x:+0:0:root:/root:/bin/bash\n",
		"root:x:4294967296:0:root:/root:/bin/bash\n",
		":x:0:0:root:/root:/bin/bash\n",
		"alice:x:1:1:::\nalice:x:2:2:::\n",
		"al ice:x:1:1:::\n",
		"al#ice:x:1:1:::\n",
		"alice:x:1000:1000:A\x00lice:/home/alice:/bin/sh\n",
	} {
		if uids, names, ok := Parse([]byte(bad)); ok {
			t.Errorf("Parse(%q) = %v, %v, ok; want not ok", bad, uids, names)
		}
	}
}

func TestFilesFirst(t *testing.T) {
	for conf, want := range map[string]bool{
		"passwd: files systemd\ngroup: files\n":            true,
		"passwd:files\n":                                   true,
		"# passwd: ldap\npasswd:  files # then\n":          true,
		"PASSWD: files\n":                                  false, // glibc reads no passwd line here (its default then is left to NSS)
		"passwd: files#x\n":                                false, // glibc: a source named "files#x", no account found
		"passwd: files\u00a0x\n":                           false, // one word for glibc: NBSP is no C space
		"passwd: files\u0085\n":                            false,
		"passwd:\tfiles\r\n":                               true,
		"passwd: files\npasswd sss\n":                      false, // glibc: a passwd line without the colon, the later line wins
		"passwd: files\npasswd\tsss\n":                     false,
		"passwd: files\npasswd x: sss\n":                   false,
		"passwd: files\npasswd\n":                          false,
		"passwd: files\npasswd@: sss\n":                    true, // database "passwd@"
		"passwd :files\n":                                  true,
		"passwd files\n":                                   true,
		"passwd: files:x\n":                                false,
		"passwd: files #x ldap\n":                          true,
		"passwd: systemd files\n":                          false,
		"passwd: compat\n":                                 false,
		"passwd: sss files\n":                              false,
		"passwd: files [SUCCESS=continue] ldap\n":          false,
		"passwd: files\npasswd: ldap\n":                    false,
		"passwd: files\nPasswd: ldap\n":                    true, // glibc matches the name exactly: Passwd is no passwd line
		"passwd: systemd\nPASSWD: files\n":                 false,
		"group: files\n":                                   false,
		"":                                                 false,
		"passwd:\n":                                        false,
		"passwdx: files\n":                                 false,
		"shadow: files\npasswd: files systemd\nhosts: dns": true,
	} {
		if got := FilesFirst([]byte(conf)); got != want {
			t.Errorf("FilesFirst(%q) = %v, want %v", conf, got, want)
		}
	}
}

// files writes a passwd file and an nsswitch.conf in a temporary directory.
func files(t *testing.T, passwd, conf string) (f *Files, passwdPath, confPath string) {
	t.Helper()
	dir := t.TempDir()
	passwdPath, confPath = filepath.Join(dir, "passwd"), filepath.Join(dir, "nsswitch.conf")
	write(t, passwdPath, passwd)
	write(t, confPath, conf)
	return New(passwdPath, confPath), passwdPath, confPath
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replace puts text at path by renaming a new file over it, as useradd and
// vipw do.
func replace(t *testing.T, path, text string) {
	t.Helper()
	write(t, path+".new", text)
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// want checks the answers for alice: uid, or no answer for her nor for
// uid 1000 when ok is false.
func want(t *testing.T, f *Files, step string, uid uint32, ok bool) {
	t.Helper()
	if got, gotOK := f.UID("alice"); got != uid || gotOK != ok {
		t.Fatalf("%s: UID(alice) = %d, %v; want %d, %v", step, got, gotOK, uid, ok)
	}
	if !ok {
		if name, gotOK := f.Name(1000); gotOK {
			t.Fatalf("%s: Name(1000) = %q, want no answer", step, name)
		}
		return
	}
	if name, gotOK := f.Name(uid); !gotOK || name != "alice" {
		t.Fatalf("%s: Name(%d) = %q, %v; want alice", step, uid, name, gotOK)
	}
}

// TestFilesFollowChanges: every change of either file is seen by the next
// lookup, whether the file is replaced or rewritten in place.
func TestFilesFollowChanges(t *testing.T) {
	root := "root:x:0:0:root:/root:/bin/bash\n"
	f, passwdPath, confPath := files(t, root+"alice:x:1000:1000::/home/alice:/bin/sh\n", "passwd: files systemd\n")
	want(t, f, "at first", 1000, true)
	if _, ok := f.UID("mallory"); ok {
		t.Fatal("an account not in the file was answered")
	}
	replace(t, passwdPath, root+"alice:x:1001:1001::/home/alice:/bin/sh\n") // same size, new file
	want(t, f, "after alice's uid changed", 1001, true)
	if name, ok := f.Name(1000); ok {
		t.Fatalf("uid 1000 still answered as %q after its account was renumbered", name)
	}
	write(t, passwdPath, root) // in place, shorter
	want(t, f, "after alice was removed", 0, false)
	write(t, passwdPath, root+"alice:x:1000:1000::/home/alice:/bin/sh\n") // in place, longer
	want(t, f, "after alice came back", 1000, true)
	replace(t, confPath, "passwd: ldap files\n")
	want(t, f, "with ldap first", 0, false)
	if name, ok := f.Name(0); ok {
		t.Fatalf("with ldap first, uid 0 answered as %q", name)
	}
	replace(t, confPath, "passwd: files\n")
	want(t, f, "with files first again", 1000, true)
	write(t, passwdPath, "# a comment\n"+root+"alice:x:1000:1000::/home/alice:/bin/sh\n")
	want(t, f, "with a comment in the file", 0, false)
	if err := os.Remove(passwdPath); err != nil {
		t.Fatal(err)
	}
	want(t, f, "without the file", 0, false)
}

// TestFilesRacyVersion: a file rewritten in place at the same size within
// one tick of the file system's clock keeps every stat field (device,
// inode, size, both times); the version read first must not be kept then,
// or the second would never be seen. A version changed long before it was
// read is kept. The stat is fixed here: whether two real writes fall in
// one tick is up to the clock.
func TestFilesRacyVersion(t *testing.T) {
	line := func(uid int) string { return fmt.Sprintf("alice:x:%d:%d::/home/alice:/bin/sh\n", uid, uid) }
	f, passwdPath, _ := files(t, line(1000), "passwd: files\n")
	same := func(changed time.Time) {
		ts := syscall.NsecToTimespec(changed.UnixNano())
		f.stat = func(string) (identity, error) {
			return identity{dev: 1, ino: 2, size: int64(len(line(1000))), mtime: ts, ctime: ts}, nil
		}
	}
	same(time.Now())
	want(t, f, "first version, just changed", 1000, true)
	write(t, passwdPath, line(1001)) // in place, same size, same stat
	want(t, f, "second version within the same tick", 1001, true)

	same(time.Now().Add(-time.Hour))
	want(t, f, "second version, settled", 1001, true)
	write(t, passwdPath, line(1002))
	want(t, f, "the settled version kept (no change shows in the stat)", 1001, true)
}

// TestFilesKeepsLeavingToNSS: a settled version that leaves lookups to NSS
// (here another source first) is kept like one that answers: the files are
// not read again on every lookup while their stat is unchanged.
func TestFilesKeepsLeavingToNSS(t *testing.T) {
	f, _, confPath := files(t, "alice:x:1000:1000::/home/alice:/bin/sh\n", "passwd: ldap\n")
	old := syscall.NsecToTimespec(time.Now().Add(-time.Hour).UnixNano())
	f.stat = func(string) (identity, error) { return identity{dev: 1, ino: 2, mtime: old, ctime: old}, nil }
	want(t, f, "ldap first", 0, false)
	write(t, confPath, "passwd: files\n") // unseen: the stat is fixed
	want(t, f, "the version leaving lookups to NSS kept", 0, false)
}

// TestFilesConcurrent: lookups from many goroutines while the file changes
// (run with -race) see one version or the other, never a mix.
func TestFilesConcurrent(t *testing.T) {
	version := func(uid int) string {
		return fmt.Sprintf("root:x:0:0:root:/root:/bin/bash\nalice:x:%d:%d::/home/alice:/bin/sh\nbob:x:%d:%d:::\n", uid, uid, uid+1, uid+1)
	}
	f, passwdPath, _ := files(t, version(1000), "passwd: files\n")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 300 {
				a, okA := f.UID("alice")
				if !okA {
					continue // between the two versions' files: NSS would be asked
				}
				if a != 1000 && a != 2000 {
					t.Errorf("alice's uid %d is in neither version", a)
					return
				}
				if name, ok := f.Name(a + 1); ok && name != "bob" {
					t.Errorf("uid %d answered as %q", a+1, name)
					return
				}
			}
		})
	}
	for i := range 100 {
		replace(t, passwdPath, version(1000+1000*(i%2)))
	}
	wg.Wait()
}

// TestSystemAgreesWithNSS: on this machine, every account of /etc/passwd is
// answered as os/user (NSS) answers it, or left to NSS.
func TestSystemAgreesWithNSS(t *testing.T) {
	f := System()
	text, err := os.ReadFile(PasswdFile)
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(NSSwitchFile)
	uids, _, parsed := Parse(text)
	usable := parsed && FilesFirst(conf)
	t.Logf("%s: %d accounts, answered here: %v", PasswdFile, len(uids), usable)
	for name := range uids {
		u, err := user.Lookup(name)
		if err != nil {
			t.Fatalf("NSS does not know %s: %v", name, err)
		}
		uid, ok := f.UID(name)
		if ok != usable || (ok && strconv.FormatUint(uint64(uid), 10) != u.Uid) {
			t.Errorf("UID(%s) = %d, %v; NSS says %s (answered here: %v)", name, uid, ok, u.Uid, usable)
		}
		n, _ := strconv.ParseUint(u.Uid, 10, 32)
		byID, err := user.LookupId(u.Uid)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := f.Name(uint32(n)); ok != usable || (ok && got != byID.Username) {
			t.Errorf("Name(%d) = %q, %v; NSS says %q", n, got, ok, byID.Username)
		}
	}
	if _, ok := f.UID("no-such-account-here"); ok {
		t.Error("an unknown account was answered")
	}
}
