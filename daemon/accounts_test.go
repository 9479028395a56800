package daemon_test

import (
	"os"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/daemon"
)

// TestSystemAccountsAgreeWithNSS: the accounts read from /etc/passwd where
// NSS reads it first answer every lookup as NSS alone (the zero
// SystemAccounts) does, for the machine's accounts and for unknown ones.
func TestSystemAccountsAgreeWithNSS(t *testing.T) {
	fast, nss := daemon.NewSystemAccounts(), daemon.SystemAccounts{}
	text, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"no-such-account-here", "root:x", ""}
	for line := range strings.Lines(string(text)) {
		if name, _, ok := strings.Cut(line, ":"); ok {
			names = append(names, name)
		}
	}
	for _, name := range names {
		uid, ok := fast.UserID(name)
		nssUID, nssOK := nss.UserID(name)
		if uid != nssUID || ok != nssOK || fast.UserExists(name) != nss.UserExists(name) {
			t.Errorf("%q: uid %d, %v and exists %v; NSS says %d, %v and %v", name, uid, ok, fast.UserExists(name),
				nssUID, nssOK, nss.UserExists(name))
		}
		if !ok {
			continue
		}
		if got, want := fmtName(fast.UserName(uid)), fmtName(nss.UserName(uid)); got != want {
			t.Errorf("uid %d: %s; NSS says %s", uid, got, want)
		}
	}
	if got, want := fmtName(fast.UserName(4_000_000_123)), fmtName(nss.UserName(4_000_000_123)); got != want {
		t.Errorf("an unknown uid: %s; NSS says %s", got, want)
	}
}

func fmtName(name string, ok bool) string {
	if !ok {
		return "unknown"
	}
	return name
}
