package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// PAMWrapperLib is pam_wrapper's preload library from Debian's
// libpam-wrapper package: with PAM_WRAPPER=1 it makes libpam read service
// files from PAM_WRAPPER_SERVICE_DIR instead of /etc/pam.d.
const PAMWrapperLib = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so"

// PAMEnv is a private PAM configuration for one test: a service directory
// under t.TempDir that pamtester reads through pam_wrapper, so nothing in
// /etc is touched (TESTING.md "PAM without touching /etc").
type PAMEnv struct {
	// ServiceDir holds the service files, one per service name.
	ServiceDir string
}

// PAM creates an empty service directory. It stops the test through Missing
// when pamtester or libpam-wrapper is not installed.
func PAM(t testing.TB) *PAMEnv {
	t.Helper()
	RequireBinaries(t, "pamtester")
	RequireFiles(t, PAMWrapperLib)
	dir := filepath.Join(t.TempDir(), "pam.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("pam service dir: %v", err)
	}
	return &PAMEnv{ServiceDir: dir}
}

// WriteService writes the service file for service with the given lines
// ("auth required /path/pam_x.so arg").
func (e *PAMEnv) WriteService(t testing.TB, service string, lines ...string) {
	t.Helper()
	body := strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(e.ServiceDir, service), []byte(body), 0o644); err != nil {
		t.Fatalf("pam service %s: %v", service, err)
	}
}

// Env returns the environment that makes a PAM application use the private
// service directory: this process's environment plus LD_PRELOAD of
// pam_wrapper, PAM_WRAPPER=1 and PAM_WRAPPER_SERVICE_DIR.
func (e *PAMEnv) Env() []string {
	env := []string{
		"LD_PRELOAD=" + PAMWrapperLib,
		"PAM_WRAPPER=1",
		"PAM_WRAPPER_SERVICE_DIR=" + e.ServiceDir,
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "LD_PRELOAD", "PAM_WRAPPER", "PAM_WRAPPER_SERVICE_DIR":
		default:
			env = append(env, kv)
		}
	}
	return env
}

// Run runs `pamtester SERVICE USER OPS...` (ops default to "authenticate")
// under pam_wrapper with stdin as the person's typing: pamtester's
// conversation reads each prompt's answer as one line of stdin when stdin
// is not a terminal. It returns pamtester's standard output and error
// interleaved; err is non-nil (an *exec.ExitError) when an operation
// failed, or ctx's error when it ended first.
func (e *PAMEnv) Run(ctx context.Context, service, user, stdin string, ops ...string) (string, error) {
	if len(ops) == 0 {
		ops = []string{"authenticate"}
	}
	cmd := exec.CommandContext(ctx, "pamtester", append([]string{service, user}, ops...)...)
	cmd.Env = e.Env()
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("pamtester %s %s: %w", service, user, ctx.Err())
	}
	return out.String(), err
}

var pamModule struct {
	once sync.Once
	path string
	err  error
}

// PAMModule builds pam_hwauth.so and its helper (make pam: the C module
// with -Werror, the helper without -race) once per test binary, the module
// set to run that helper, and returns the module's path. The build
// directory is removed by Main, so a test binary that uses it has
// func TestMain(m *testing.M) { testenv.Main(m) }.
func PAMModule(t testing.TB) string {
	t.Helper()
	RequireBinaries(t, "go", "gcc", "make")
	pamModule.once.Do(func() {
		dir, err := os.MkdirTemp("", "pam_hwauth")
		if err != nil {
			pamModule.err = err
			return
		}
		AtExit(func() { os.RemoveAll(dir) })
		pamModule.err = makePAM(dir, "pam", filepath.Join(dir, "hwauthd-pam-helper"))
		pamModule.path = filepath.Join(dir, "pam_hwauth.so")
	})
	if pamModule.err != nil {
		t.Fatal(pamModule.err)
	}
	return pamModule.path
}

// PAMModuleWithHelper builds pam_hwauth.so (C only, make pam-module) set to
// run helper instead of hwauthd-pam-helper, into a directory of the test,
// and returns its path: tests of how the module treats a helper that
// misbehaves.
func PAMModuleWithHelper(t testing.TB, helper string) string {
	t.Helper()
	RequireBinaries(t, "go", "gcc", "make")
	dir := t.TempDir()
	if err := makePAM(dir, "pam-module", helper); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "pam_hwauth.so")
}

// makePAM runs `make target` of the repository's Makefile with BUILD=dir
// and PAM_HELPER=helper, so the tests build the module with the flags it
// ships with.
func makePAM(dir, target, helper string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("make", "--no-print-directory", "-C", root, target,
		"BUILD="+dir, "PAM_HELPER="+helper, "CFLAGS=-Werror")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make %s: %w\n%s", target, err, out)
	}
	return nil
}

// repoRoot returns the directory of the repository's go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the hwauthd module")
	}
	return filepath.Dir(mod), nil
}
