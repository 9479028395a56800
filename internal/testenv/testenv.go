// Package testenv starts the real software stacks the tests run against
// (swtpm, PostgreSQL, SoftHSM2, PAM through pam_wrapper, a private D-Bus
// with a mock logind) and stops them when a test ends. See
// ../../../shared/TESTING.md for the recipes. It builds without cgo, so the
// core packages test without it; the PC/SC stack (pcscd, vpcd readers and
// the cards in them), which needs libpcsclite, is package pcscenv.
//
// A stack that is missing makes the test fail under CI (CI=true) and skip,
// saying why, elsewhere: `make test` installs every stack first, so in CI a
// missing one is a bug, not a reason to skip.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// InCI reports whether the tests run under CI, where a missing stack is a
// failure rather than a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing stops the test because a stack it needs is missing: t.Fatal under
// CI, t.Skip elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("required stack missing in CI: "+format, args...)
	}
	t.Skipf("skipping, stack missing (run `make test` to install it): "+format, args...)
}

// RequireBinaries checks that each named program is on PATH (or an absolute
// path that exists) and stops the test through Missing when one is not.
func RequireBinaries(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			Missing(t, "%s not found: %v", n, err)
		}
	}
}

// RequireFiles checks that each path exists and stops the test through
// Missing when one does not.
func RequireFiles(t testing.TB, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			Missing(t, "%s: %v", p, err)
		}
	}
}

// RequireRoot stops the test through Missing unless it runs as root (needed
// for namespaces and for starting clients under other uids).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "must run as root (namespaces, other uids)")
	}
}

// FreeTCPPort returns a loopback TCP port that was free a moment ago. Use it
// for servers that cannot be given port 0 (swtpm); pairs of ports are found
// with FreeTCPPortPair.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeTCPPortPair returns a port P such that P and P+1 were both free on
// loopback a moment ago (swtpm's command and control ports).
func FreeTCPPortPair(t testing.TB) int {
	t.Helper()
	for range 50 {
		l1, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find free port: %v", err)
		}
		p := l1.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)))
		l1.Close()
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatalf("no free pair of loopback ports")
	return 0
}
