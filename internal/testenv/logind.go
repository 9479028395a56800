package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// LogindMock is python3-dbusmock's logind template on a private dbus-daemon
// that stands for the system bus: DBUS_SYSTEM_BUS_ADDRESS points at it for
// the rest of the test (so the test must not run in parallel). Its log
// records every method called on it.
type LogindMock struct {
	addr, log string
}

// Logind starts the mock bus and logind and stops them when the test ends.
func Logind(t *testing.T) *LogindMock {
	t.Helper()
	RequireBinaries(t, "dbus-daemon", "gdbus", "/usr/bin/python3")
	if out, err := exec.Command("/usr/bin/python3", "-c", "import dbusmock").CombinedOutput(); err != nil {
		Missing(t, "python3-dbusmock: %v: %s", err, out)
	}
	dir := t.TempDir()
	_, addr := startSessionBus(t, dir)
	l := &LogindMock{addr: addr, log: filepath.Join(dir, "logind.log")}
	cmd := exec.Command("/usr/bin/python3", "-m", "dbusmock", "--system", "--template", "logind", "-l", l.log)
	cmd.Env = withEnv(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+addr)
	mock := startChild(t, "dbusmock logind", cmd)
	if err := waitBusName(addr, "org.freedesktop.login1", mock.done); err != nil {
		t.Fatalf("dbusmock logind: %v", err)
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	return l
}

// AddSession adds login session id of user (uid) on seat0.
func (l *LogindMock) AddSession(t testing.TB, id string, uid uint32, user string) {
	t.Helper()
	l.call(t, "/org/freedesktop/login1", "org.freedesktop.DBus.Mock.AddSession", id, "seat0", strconv.FormatUint(uint64(uid), 10), user, "true")
}

// AddMethod adds (or replaces) a method of logind's Manager whose Python
// code sets ret or raises, as dbusmock's AddMethod does.
func (l *LogindMock) AddMethod(t testing.TB, name, inSig, outSig, code string) {
	t.Helper()
	l.call(t, "/org/freedesktop/login1", "org.freedesktop.DBus.Mock.AddMethod", "org.freedesktop.login1.Manager", name, inSig, outSig, code)
}

// Log returns what the mock logged: one line per method call.
func (l *LogindMock) Log(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(l.log)
	if err != nil {
		t.Fatalf("dbusmock log: %v", err)
	}
	return string(b)
}

// call calls a method on the mock with gdbus (its arguments in GVariant
// text).
func (l *LogindMock) call(t testing.TB, path, method string, args ...string) {
	t.Helper()
	cmdArgs := append([]string{"call", "--session", "--dest", "org.freedesktop.login1", "--object-path", path, "--method", method}, quoted(args)...)
	cmd := exec.Command("gdbus", cmdArgs...)
	cmd.Env = withEnv(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+l.addr)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gdbus %s: %v: %s", method, err, out)
	}
}

// quoted writes strings, numbers and booleans as GVariant text for gdbus.
func quoted(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if _, err := strconv.ParseUint(a, 10, 32); err == nil || a == "true" || a == "false" {
			out[i] = a
			continue
		}
		out[i] = strconv.Quote(a)
	}
	return out
}
