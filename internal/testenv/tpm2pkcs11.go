package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TPM2PKCS11Token is the label of the token TPM2PKCS11 provisions, and
// TPM2PKCS11Key the label (CKA_LABEL) of its ECC P-256 key pair.
const (
	TPM2PKCS11Token = "bench"
	TPM2PKCS11Key   = "bench"
)

// tpm2PKCS11Timeout bounds each step of the provisioning: the D-Bus bus and
// tpm2-abrmd coming up, each tpm2_ptool run, each process stopping.
const tpm2PKCS11Timeout = 20 * time.Second

// tabrmdName is the D-Bus name tpm2-abrmd owns once it serves clients.
const tabrmdName = "com.intel.tss2.Tabrmd"

// TPM2PKCS11 provisions a tpm2-pkcs11 (Debian libtpm2-pkcs11-1) store on
// swtpm: a persistent primary key, the token TPM2PKCS11Token with userPIN,
// and the ECC P-256 key pair TPM2PKCS11Key in it. tpm2_ptool needs a
// resource manager, so it runs through a private tpm2-abrmd on a private
// D-Bus session bus; both are stopped before TPM2PKCS11 returns, which
// leaves swtpm (one connection at a time) free for the module.
//
// It returns the module's path, the store directory (under t.TempDir) and
// the environment the module needs (TPM2_PKCS11_TCTI, TPM2_PKCS11_STORE as
// KEY=VALUE): set it with t.Setenv before C_Initialize in this process, or
// append it to a child's environment. It stops the test through Missing
// when tpm2-pkcs11, its tools, tpm2-abrmd or dbus are not installed.
func TPM2PKCS11(t testing.TB, swtpm *SWTPMInstance, userPIN string) (module, storeDir string, env []string) {
	t.Helper()
	RequireBinaries(t, "tpm2_ptool", "tpm2-abrmd", "dbus-daemon", "gdbus")
	module = findLib(t, "pkcs11/libtpm2_pkcs11.so")
	findLib(t, "libtss2-tcti-tabrmd.so.0")
	dir := t.TempDir()
	storeDir = filepath.Join(dir, "store")
	if err := os.Mkdir(storeDir, 0o700); err != nil {
		t.Fatalf("tpm2-pkcs11 store dir: %v", err)
	}
	bus, busAddr := startSessionBus(t, dir)
	defer bus.stop()
	abrmd := startABRMD(t, busAddr, swtpm)
	defer abrmd.stop()
	toolEnv := withEnv(os.Environ(),
		"DBUS_SESSION_BUS_ADDRESS="+busAddr,
		"TPM2TOOLS_TCTI=tabrmd:bus_type=session",
		"TPM2_PKCS11_STORE="+storeDir)
	ptool(t, toolEnv, "init")
	ptool(t, toolEnv, "addtoken", "--pid=1", "--label="+TPM2PKCS11Token,
		"--sopin="+rand.Text(), "--userpin="+userPIN)
	ptool(t, toolEnv, "addkey", "--algorithm=ecc256", "--label="+TPM2PKCS11Token,
		"--key-label="+TPM2PKCS11Key, "--userpin="+userPIN)
	abrmd.stop()
	bus.stop()
	return module, storeDir, []string{
		"TPM2_PKCS11_TCTI=swtpm:host=127.0.0.1,port=" + strconv.Itoa(swtpm.port),
		"TPM2_PKCS11_STORE=" + storeDir,
	}
}

// findLib returns the first /usr/lib/<triplet>/name or /usr/lib/name that
// exists and stops the test through Missing when there is none.
func findLib(t testing.TB, name string) string {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join("/usr/lib/*", name))
	if _, err := os.Stat(filepath.Join("/usr/lib", name)); err == nil {
		found = append(found, filepath.Join("/usr/lib", name))
	}
	if len(found) == 0 {
		Missing(t, "%s not found under /usr/lib", name)
	}
	return found[0]
}

// withEnv returns env with each KEY=VALUE of set replacing any entry for the
// same KEY.
func withEnv(env []string, set ...string) []string {
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(set, func(s string) bool { return strings.HasPrefix(s, k+"=") }) {
			out = append(out, kv)
		}
	}
	return append(out, set...)
}

// ptool runs one tpm2_ptool command. Its arguments hold PINs, so a failure
// names only the subcommand and shows the tool's output.
func ptool(t testing.TB, env []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tpm2PKCS11Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tpm2_ptool", args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tpm2_ptool %s: %v\n%s", args[0], err, out)
	}
}

// child is a helper daemon started for the provisioning.
type child struct {
	name string
	cmd  *exec.Cmd
	done <-chan struct{}
}

// startChild starts cmd (dying with this process) and stops it at cleanup
// if it is still running then.
func startChild(t testing.TB, name string, cmd *exec.Cmd) *child {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done, err := StartLocked(cmd)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	c := &child{name: name, cmd: cmd, done: done}
	t.Cleanup(c.stop)
	return c
}

// stop terminates the process and waits for it to exit; it may be called
// more than once.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(tpm2PKCS11Timeout):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// startSessionBus starts a private dbus-daemon listening on a socket in dir
// and returns it and its address once it has printed that, which it does
// when it accepts connections.
func startSessionBus(t testing.TB, dir string) (*child, string) {
	t.Helper()
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nosyslog",
		"--address=unix:path="+filepath.Join(dir, "bus"), "--print-address=1")
	// An *os.File as Stdout, not StdoutPipe: cmd.Wait runs at once in
	// StartLocked and would close a StdoutPipe under the reader.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("dbus-daemon stdout: %v", err)
	}
	cmd.Stdout = w
	bus := startChild(t, "dbus-daemon", cmd)
	w.Close()
	lines := make(chan string, 1)
	go func() {
		defer r.Close()
		line, _ := bufio.NewReader(r).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	var addr string
	select {
	case addr = <-lines:
	case <-time.After(tpm2PKCS11Timeout):
		t.Fatalf("dbus-daemon printed no address in %v", tpm2PKCS11Timeout)
	}
	if addr == "" {
		t.Fatalf("dbus-daemon exited before printing its address")
	}
	return bus, addr
}

// startABRMD starts tpm2-abrmd on the bus at busAddr in front of swtpm and
// returns once it owns its D-Bus name.
func startABRMD(t testing.TB, busAddr string, swtpm *SWTPMInstance) *child {
	t.Helper()
	cmd := exec.Command("tpm2-abrmd", "--session", "--allow-root", "--flush-all",
		"--tcti=swtpm:host=127.0.0.1,port="+strconv.Itoa(swtpm.port))
	cmd.Env = withEnv(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+busAddr)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	abrmd := startChild(t, "tpm2-abrmd", cmd)
	if err := waitBusName(busAddr, tabrmdName, abrmd.done); err != nil {
		abrmd.stop()
		t.Fatalf("tpm2-abrmd: %v\n%s", err, logs.String())
	}
	return abrmd
}

// waitBusName waits until name has an owner on the bus at busAddr, giving
// up when done closes (the owner-to-be exited) or after tpm2PKCS11Timeout.
func waitBusName(busAddr, name string, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), tpm2PKCS11Timeout)
	defer cancel()
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	cmd := exec.CommandContext(ctx, "gdbus", "wait", "--session",
		"--timeout", strconv.Itoa(int(tpm2PKCS11Timeout/time.Second)), name)
	cmd.Env = withEnv(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+busAddr)
	out, err := cmd.CombinedOutput()
	select {
	case <-done:
		return errors.New("exited before owning " + name)
	default:
	}
	if err != nil {
		return fmt.Errorf("waiting for %s: %w: %s", name, err, out)
	}
	return nil
}
