package pam

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/pam/internal/fakeapi"
	"github.com/hwauthd/hwauthd/pam/signin"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// stack is the PAM stack of one test: a service "hwtest" whose auth and
// session lines load the module with args against the fake API.
func stack(t *testing.T, f *fakeapi.Daemon, args ...string) *testenv.PAMEnv {
	env := testenv.PAM(t)
	line := strings.Join(append([]string{testenv.PAMModule(t), "socket=" + f.Socket}, args...), " ")
	env.WriteService(t, "hwtest", "auth required "+line, "session optional "+line)
	return env
}

// aliceWithCard registers a present card (PIN 123456) to alice.
func aliceWithCard(t *testing.T) *fakeapi.Daemon {
	f := fakeapi.Start(t)
	card := f.Card("piv-1", "PIV card", "123456")
	f.Register("alice", card, "Work card", true)
	f.Insert(card)
	return f
}

func wantFailure(t *testing.T, out string, err error, contains ...string) {
	t.Helper()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("pamtester did not fail: %v\n%s", err, out)
	}
	for _, c := range contains {
		if !strings.Contains(out, c) {
			t.Fatalf("output lacks %q:\n%s", c, out)
		}
	}
}

// TestRightPIN signs in, opens and closes the session: close_session signs
// out of the hwauthd session kept with pam_set_data.
func TestRightPIN(t *testing.T) {
	f := aliceWithCard(t)
	env := stack(t, f, "timeout=1")
	out, err := env.Run(testCtx(t), "hwtest", "alice", "123456\n", "authenticate", "open_session", "close_session")
	if err != nil || !strings.Contains(out, "successfully authenticated") || !strings.Contains(out, "session has successfully been closed") {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "PIN for Work card:") || strings.Contains(out, "123456") {
		t.Fatalf("prompt missing or PIN echoed:\n%s", out)
	}
	if got := f.SignOuts(); !slices.Equal(got, []string{"s1"}) {
		t.Fatalf("signed out %q, want [s1]", got)
	}
	// open_session opened the pending session with pamtester's pid, the
	// process the login session is found by.
	if got := f.Opens(); len(got) != 1 || got[0].PID <= 1 {
		t.Fatalf("opened %+v, want one open with the application's pid", got)
	}
}

func TestWrongPINShowsTriesLeft(t *testing.T) {
	f := aliceWithCard(t)
	env := stack(t, f, "timeout=1")
	out, err := env.Run(testCtx(t), "hwtest", "alice", "654321\n")
	wantFailure(t, out, err, "Wrong PIN, 2 tries left.", "Authentication failure")
	if strings.Contains(out, "654321") || f.SignIns() != 1 {
		t.Fatalf("PIN echoed or retried (%d sign-ins):\n%s", f.SignIns(), out)
	}
}

func TestBlockedPINSaysHowToUnblock(t *testing.T) {
	f := aliceWithCard(t)
	env := stack(t, f, "timeout=1")
	for range fakeapi.Tries {
		env.Run(testCtx(t), "hwtest", "alice", "000000\n")
	}
	out, err := env.Run(testCtx(t), "hwtest", "alice", "123456\n")
	wantFailure(t, out, err, "Your PIN is blocked", "ask your administrator")
}

func TestUnregisteredCard(t *testing.T) {
	f := fakeapi.Start(t)
	f.Register("alice", f.Card("piv-1", "PIV card", "123456"), "Work card", true)
	f.Insert(f.Card("piv-2", "Other card", "111111"))
	env := stack(t, f, "timeout=1")
	out, err := env.Run(testCtx(t), "hwtest", "alice", "111111\n")
	wantFailure(t, out, err, "This card is not registered to alice.")
	if strings.Contains(out, "PIN for") || f.SignIns() != 0 {
		t.Fatalf("asked for the PIN of a foreign card:\n%s", out)
	}
}

// TestNoCardWaitThenAsk: after the short wait the module asks for the card
// or Enter; Enter alone answers "authentication info unavailable", so a
// "sufficient" line falls through to the password.
func TestNoCardWaitThenAsk(t *testing.T) {
	f := fakeapi.Start(t)
	f.Register("alice", f.Card("piv-1", "PIV card", "123456"), "Work card", true)
	env := stack(t, f, "timeout=1")
	start := time.Now()
	out, err := env.Run(testCtx(t), "hwtest", "alice", "\n")
	wantFailure(t, out, err, "Insert your smart card or security key", "Insert your card and press Enter, or press Enter for your password", "cannot retrieve authentication info")
	if d := time.Since(start); d < time.Second {
		t.Fatalf("asked after %v, before the wait ended", d)
	}
}

// TestConfigurationErrors: a bad argument is a service error, an absent
// daemon is "authentication info unavailable" (a sufficient line falls
// through to the next method).
func TestConfigurationErrors(t *testing.T) {
	env := testenv.PAM(t)
	so := testenv.PAMModule(t)
	env.WriteService(t, "typo", "auth required "+so+" sockt=/x")
	env.WriteService(t, "down", "auth required "+so+" socket="+filepath.Join(t.TempDir(), "none.sock"))
	out, err := env.Run(testCtx(t), "typo", "alice", "")
	wantFailure(t, out, err, "Error in service module")
	out, err = env.Run(testCtx(t), "down", "alice", "")
	wantFailure(t, out, err, "hwauthd) is not running", "cannot retrieve authentication info")
}

// TestForkingHost runs the module in a host that forks without exec after
// pam_authenticate (as sshd does): the child authenticates, opens and
// closes its own session, and the parent closes its session afterwards.
// Each call starts a fresh helper, so both processes sign in and out.
func TestForkingHost(t *testing.T) {
	f := aliceWithCard(t)
	env := stack(t, f, "timeout=1")
	host := filepath.Join(t.TempDir(), "forkhost")
	if out, err := exec.Command("gcc", "-Wall", "-Werror", "-o", host, "testdata/forkhost.c", "-lpam").CombinedOutput(); err != nil {
		t.Fatalf("build forkhost: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(testCtx(t), host, "hwtest", "alice")
	cmd.Env = env.Env()
	cmd.Stdin = strings.NewReader("123456\n123456\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("forkhost: %v\n%s", err, out)
	}
	for _, want := range []string{"parent authenticate: Success", "child authenticate: Success", "child close_session: Success", "parent close_session: Success"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got := f.SignOuts(); !slices.Equal(got, []string{"s2", "s1"}) {
		t.Fatalf("signed out %q, want the child's s2, then the parent's s1", got)
	}
}

var fakeHelper struct {
	once sync.Once
	path string
	err  error
}

// fakeHelperModule returns pam_hwauth.so built to run pam/internal/fakehelper.
func fakeHelperModule(t *testing.T) string {
	fakeHelper.once.Do(func() {
		dir, err := os.MkdirTemp("", "fakehelper")
		if err != nil {
			fakeHelper.err = err
			return
		}
		testenv.AtExit(func() { os.RemoveAll(dir) })
		fakeHelper.path = filepath.Join(dir, "fakehelper")
		if out, err := exec.Command("go", "build", "-o", fakeHelper.path, "./internal/fakehelper").CombinedOutput(); err != nil {
			fakeHelper.err = fmt.Errorf("build fakehelper: %v\n%s", err, out)
		}
	})
	if fakeHelper.err != nil {
		t.Fatal(fakeHelper.err)
	}
	return testenv.PAMModuleWithHelper(t, fakeHelper.path)
}

// TestHelperSeesOnlyItsSocket: the helper runs with an empty environment
// (no LD_PRELOAD or anything else of the host) and no descriptor of the
// host but /dev/null on 0-2 and the socket on 3; the answer to its prompt
// reaches it whole.
func TestHelperSeesOnlyItsSocket(t *testing.T) {
	so := fakeHelperModule(t)
	env := testenv.PAM(t)
	report := filepath.Join(t.TempDir(), "report")
	env.WriteService(t, "hwtest", "auth required "+so+" mode=report report="+report)
	out, err := env.Run(testCtx(t), "hwtest", "alice", "s3cret-pin\n")
	if err != nil || !strings.Contains(out, "Secret:") {
		t.Fatalf("%v\n%s", err, out)
	}
	got, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for line := range strings.Lines(string(got)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "fds="); ok {
			fds = strings.Fields(v)
		}
	}
	if !strings.Contains(string(got), "env=[]\n") || !strings.Contains(string(got), "user=alice op=authenticate\nanswer=10\n") || len(fds) < 4 {
		t.Fatalf("helper saw\n%s", got)
	}
	for i, fd := range fds {
		num, target, _ := strings.Cut(fd, "=")
		ok := false
		switch {
		case i < 3:
			ok = fd == strconv.Itoa(i)+"=/dev/null"
		case i == 3:
			ok = fd == "3="+target && strings.HasPrefix(target, "socket:")
		default: // the Go runtime's poller and cgroup CPU limit files, and
			// the directory being listed (gone by the time of Readlink)
			ok = target == "" || strings.HasPrefix(target, "anon_inode:") || strings.HasPrefix(target, "/sys/fs/cgroup/")
		}
		if !ok {
			t.Errorf("helper descriptor %s → %s came from the host", num, target)
		}
	}
}

// TestHelperFailures: a helper that exits without a result, breaks the
// protocol or hangs fails the call with PAM_SYSTEM_ERR, and a hanging one
// is killed once its announced silence has passed.
func TestHelperFailures(t *testing.T) {
	so := fakeHelperModule(t)
	for _, mode := range []string{"exit", "garbage", "huge", "hang"} {
		t.Run(mode, func(t *testing.T) {
			env := testenv.PAM(t)
			report := filepath.Join(t.TempDir(), "report")
			env.WriteService(t, "hwtest", "auth required "+so+" mode="+mode+" report="+report)
			out, err := env.Run(testCtx(t), "hwtest", "alice", "")
			wantFailure(t, out, err, "System error")
			if mode != "hang" {
				return
			}
			b, err := os.ReadFile(report)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(string(b))
			if err != nil {
				t.Fatal(err)
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Fatalf("the hanging helper %d is still there: %v", pid, err)
			}
		})
	}
}

// TestModuleHardened reads the built module: full RELRO (a GNU_RELRO
// segment and BIND_NOW), no executable stack, the stack protector and
// fortified functions in use, no dependency but libpam and libc, and only
// the pam_sm_* entry points exported.
func TestModuleHardened(t *testing.T) {
	f, err := elf.Open(testenv.PAMModule(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var relro, stack bool
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_GNU_RELRO:
			relro = true
		case elf.PT_GNU_STACK:
			stack = true
			if p.Flags&elf.PF_X != 0 {
				t.Error("executable stack")
			}
		}
	}
	if !relro || !stack {
		t.Errorf("GNU_RELRO %v, GNU_STACK %v: want both", relro, stack)
	}
	flags, err := f.DynValue(elf.DT_FLAGS)
	if err != nil || len(flags) != 1 || elf.DynFlag(flags[0])&elf.DF_BIND_NOW == 0 {
		t.Errorf("DT_FLAGS %v (%v): want BIND_NOW", flags, err)
	}
	libs, err := f.ImportedLibraries()
	if slices.Sort(libs); err != nil || !slices.Equal(libs, []string{"libc.so.6", "libpam.so.0"}) {
		t.Errorf("needs %v (%v), want libc and libpam only", libs, err)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	var exported, checked []string
	for _, s := range syms {
		switch {
		case s.Section == elf.SHN_UNDEF && strings.HasSuffix(s.Name, "_chk") || s.Name == "__stack_chk_fail":
			checked = append(checked, s.Name)
		case s.Section != elf.SHN_UNDEF && elf.ST_BIND(s.Info) == elf.STB_GLOBAL:
			exported = append(exported, s.Name)
		}
	}
	slices.Sort(exported)
	want := []string{"pam_sm_acct_mgmt", "pam_sm_authenticate", "pam_sm_close_session", "pam_sm_open_session", "pam_sm_setcred"}
	if !slices.Equal(exported, want) {
		t.Errorf("exports %v, want %v", exported, want)
	}
	if !slices.Contains(checked, "__stack_chk_fail") || len(checked) < 2 {
		t.Errorf("imports %v: want __stack_chk_fail and fortified functions", checked)
	}
}

// TestManPage checks pam_hwauth(8) against the code: it documents exactly
// the arguments ParseArgs knows, their defaults, and every result the
// module returns.
func TestManPage(t *testing.T) {
	b, err := os.ReadFile("../docs/man/pam_hwauth.8")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	opts, _, ok := strings.Cut(page[strings.Index(page, ".SH OPTIONS"):], "\n.SH ")
	if !ok {
		t.Fatal("no OPTIONS section")
	}
	var documented []string
	for _, item := range strings.Split(opts, ".TP\n\\fB")[1:] {
		name, _, _ := strings.Cut(item, "\\f") // \fBsocket=\fIPATH\fR, \fBdebug\fR
		documented = append(documented, strings.TrimSuffix(name, "="))
	}
	_, err = signin.ParseArgs([]string{"no-such-argument"})
	_, known, ok := strings.Cut(fmt.Sprint(err), "(known: ")
	if !ok {
		t.Fatalf("ParseArgs does not list the known arguments: %v", err)
	}
	var code []string
	for a := range strings.SplitSeq(strings.TrimSuffix(known, ")"), ", ") {
		name, _, _ := strings.Cut(a, "=")
		code = append(code, name)
	}
	slices.Sort(documented)
	slices.Sort(code)
	if !slices.Equal(documented, code) {
		t.Errorf("pam_hwauth(8) documents %v, ParseArgs knows %v", documented, code)
	}
	d := signin.DefaultOptions()
	for _, want := range []string{fmt.Sprintf("(default %d;", int(d.InsertTimeout.Seconds())), "(default \\fB" + d.Socket + "\\fR)"} {
		if !strings.Contains(page, want) {
			t.Errorf("pam_hwauth(8) lacks the default %q", want)
		}
	}
	for r := signin.Success; r <= signin.SessionErr; r++ {
		if !strings.Contains(page, ".TP\n"+r.String()+"\n") {
			t.Errorf("pam_hwauth(8) does not list %v", r)
		}
	}
}

// TestOpenSessionSendsLoginSession: when XDG_SESSION_ID is in the PAM
// environment at open_session (pam_systemd ran before the module; here
// pam_env stands for it), the module hands it to hwauthd with the
// application's pid.
func TestOpenSessionSendsLoginSession(t *testing.T) {
	f := aliceWithCard(t)
	env := testenv.PAM(t)
	conf := filepath.Join(t.TempDir(), "pam_env.conf")
	if err := os.WriteFile(conf, []byte("XDG_SESSION_ID DEFAULT=c7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	line := testenv.PAMModule(t) + " socket=" + f.Socket + " timeout=1"
	env.WriteService(t, "hwtest", "auth required "+line, "session required pam_env.so readenv=0 conffile="+conf, "session optional "+line)
	out, err := env.Run(testCtx(t), "hwtest", "alice", "123456\n", "authenticate", "open_session")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := f.Opens(); len(got) != 1 || got[0].LoginSession != "c7" || got[0].PID <= 1 {
		t.Fatalf("opened %+v, want login session c7 and the application's pid", got)
	}
}
