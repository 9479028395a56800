// Package pcscenv is the PC/SC test stack: a private pcscd with two readers
// of vsmartcard's vpcd driver (and hwauthd's own reader driver when a test
// binary asks for it), the card side of those readers (DialReader), and
// independent PC/SC clients (OpenSC, NSS) to check cards with. See
// ../../../../shared/TESTING.md for the recipes.
//
// It needs cgo: DialReader follows pcscd's reader states through
// libpcsclite. The rest of the test stacks (swtpm, PostgreSQL, PAM) are in
// package testenv, which builds without cgo, so that the core packages test
// without it; a stack that is missing stops a test through testenv.Missing
// (a failure under CI, a skip elsewhere).
package pcscenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"golang.org/x/sys/unix"
)

// VPCDDriver is the vpcd IFD handler that the private pcscd loads.
const VPCDDriver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"

// vpcdPort is the TCP port of the first vpcd reader inside the private network
// namespace; the second reader listens on vpcdPort+1. The namespace is ours
// alone, so a fixed port cannot collide with another test binary.
const vpcdPort = 0x8C7B

// readerFriendlyName is the FRIENDLYNAME of the vpcd readers; pcscd names
// them "Test PCD 00 00" and "Test PCD 00 01".
const readerFriendlyName = "Test PCD"

// pcscdStartTimeout bounds how long Start waits for pcscd to come up.
const pcscdStartTimeout = 10 * time.Second

// PCSC is a private pcscd with two vpcd readers, running in its own mount and
// network namespaces. One instance serves a whole test binary (libpcsclite
// reads PCSCLITE_CSOCK_NAME once per process); get it with PCSCD.
//
// Tests that call Kill and Start disturb every other user of the instance and
// must not run in parallel with them.
type PCSC struct {
	dir  string // private temp dir: run/ (bound to /run/pcscd), conf/, pcscd.log
	sock string

	mu   sync.Mutex
	proc *os.Process     // the running pcscd, nil when stopped
	done <-chan struct{} // closed when proc has exited
}

var (
	pcscOnce sync.Once
	pcscInst *PCSC
	pcscErr  error
)

// PCSCD returns the test binary's private pcscd, starting it on the first
// call, and sets PCSCLITE_CSOCK_NAME in the process environment so that every
// later SCardEstablishContext talks to it. It stops the test through Missing
// when pcscd, vpcd, unshare or root are missing. Use Main in TestMain so the
// instance is stopped when the tests end.
func PCSCD(t testing.TB) *PCSC {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t, "pcscd", "unshare", "nsenter", "ip")
	testenv.RequireFiles(t, VPCDDriver)
	pcscOnce.Do(func() {
		pcscInst, pcscErr = newPCSC()
		if pcscErr == nil {
			testenv.AtExit(pcscInst.stop)
		}
	})
	if pcscErr != nil {
		t.Fatalf("start private pcscd: %v", pcscErr)
	}
	return pcscInst
}

// pcscdDirPattern names the private directories, in os.TempDir.
const pcscdDirPattern = "hwauthd-pcscd-"

// ownerFile holds the pid of the test binary that owns a private directory.
const ownerFile = "owner.pid"

func newPCSC() (*PCSC, error) {
	sweepStaleDirs()
	dir, err := os.MkdirTemp("", pcscdDirPattern)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &PCSC{dir: dir, sock: filepath.Join(dir, "run", "pcscd.comm")}
	if err := p.writeConfig(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// Before any SCardEstablishContext of this process: libpcsclite reads it once.
	if err := os.Setenv("PCSCLITE_CSOCK_NAME", p.sock); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := p.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

// sweepStaleDirs removes private directories left by test binaries that
// ended without Main's cleanup (their pcscd died with them through
// Pdeathsig). A directory whose owner still runs is left alone.
func sweepStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), pcscdDirPattern+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // being created, or not ours
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid <= 0 || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		os.RemoveAll(d)
	}
}

// extraReaders holds reader.conf.d files that WithReaderConfig added.
var extraReaders = map[string]string{}

// WithReaderConfig adds a reader.conf.d file, such as hwauthd's own reader
// driver's, to the private pcscd of this test binary. Call it from TestMain
// before the first PCSCD.
func WithReaderConfig(name, content string) { extraReaders[name] = content }

func (p *PCSC) writeConfig() error {
	for _, d := range []string{"run", "conf"} {
		if err := os.MkdirAll(filepath.Join(p.dir, d), 0o700); err != nil {
			return err
		}
	}
	for name, content := range extraReaders {
		if err := os.WriteFile(filepath.Join(p.dir, "conf", name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	conf := fmt.Sprintf("FRIENDLYNAME %q\nDEVICENAME /dev/null:0x%X\nLIBPATH %s\nCHANNELID 0x%X\n",
		readerFriendlyName, vpcdPort, VPCDDriver, vpcdPort)
	return os.WriteFile(filepath.Join(p.dir, "conf", "vpcd"), []byte(conf), 0o600)
}

// Start starts pcscd (again) on the same socket path and reader ports, in
// fresh namespaces, and waits until its socket accepts and both vpcd readers
// listen. It is a no-op when pcscd is running.
func (p *PCSC) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		return nil
	}
	run := filepath.Join(p.dir, "run")
	// A killed pcscd leaves its pid file and socket behind.
	os.Remove(filepath.Join(run, "pcscd.pid"))
	os.Remove(p.sock)
	script := fmt.Sprintf("ip link set lo up && mount -t tmpfs tmpfs /run && mkdir /run/pcscd && "+
		"mount --bind %s /run/pcscd && exec pcscd -f %s-c %s",
		shellQuote(run), pcscdDebugFlag(), shellQuote(filepath.Join(p.dir, "conf")))
	logf, err := os.OpenFile(filepath.Join(p.dir, "pcscd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("unshare", "-m", "-n", "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig kills pcscd if the test binary dies without running Main's
	// cleanup (go test -timeout). It fires when the forking thread exits, so
	// testenv.StartLocked keeps that thread alive until pcscd exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done, err := testenv.StartLocked(cmd)
	if err != nil {
		return fmt.Errorf("start pcscd: %w", err)
	}
	p.proc, p.done = cmd.Process, done
	if err := p.waitReadyLocked(); err != nil {
		p.killLocked()
		return err
	}
	return nil
}

// pcscdDebugFlag returns "--debug " when HWAUTHD_TEST_PCSCD_DEBUG is set,
// so that pcscd logs every reader poll and APDU for Diagnostics.
func pcscdDebugFlag() string {
	if os.Getenv("HWAUTHD_TEST_PCSCD_DEBUG") != "" {
		return "--debug "
	}
	return ""
}

// waitReadyLocked waits, polling with a deadline because pcscd offers nothing
// to wait on, until pcscd's socket accepts connections and both vpcd readers
// listen in its network namespace.
func (p *PCSC) waitReadyLocked() error {
	deadline := time.NewTimer(pcscdStartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.socketAccepts() && p.readersListen() {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("pcscd exited during start-up: %s", p.logTail(2000))
		case <-deadline.C:
			return fmt.Errorf("pcscd not ready after %v: %s", pcscdStartTimeout, p.logTail(2000))
		case <-tick.C:
		}
	}
}

func (p *PCSC) socketAccepts() bool {
	c, err := net.Dial("unix", p.sock)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// readersListen reports whether both vpcd readers listen on their TCP ports,
// read from /proc/PID/net/tcp, which shows pcscd's own network namespace.
func (p *PCSC) readersListen() bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", p.proc.Pid))
	if err != nil {
		return false
	}
	defer f.Close()
	want := map[string]bool{
		fmt.Sprintf(":%04X", vpcdPort):   false,
		fmt.Sprintf(":%04X", vpcdPort+1): false,
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "0A" { // 0A is TCP_LISTEN
			continue
		}
		local := fields[1]
		if i := strings.LastIndexByte(local, ':'); i >= 0 {
			if _, ok := want[local[i:]]; ok {
				want[local[i:]] = true
			}
		}
	}
	return want[fmt.Sprintf(":%04X", vpcdPort)] && want[fmt.Sprintf(":%04X", vpcdPort+1)]
}

func (p *PCSC) logTail(max int) string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "pcscd.log"))
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}

// Kill sends SIGKILL to pcscd and waits until it has exited. Clients then see
// SCARD_E_NO_SERVICE; Start brings it back.
func (p *PCSC) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killLocked()
}

func (p *PCSC) killLocked() {
	if p.proc == nil {
		return
	}
	_ = p.proc.Signal(syscall.SIGKILL)
	<-p.done
	p.proc, p.done = nil, nil
}

// stop kills pcscd and removes the private directory; Main calls it.
func (p *PCSC) stop() {
	p.Kill()
	os.RemoveAll(p.dir)
}

// LogMark returns the current end of pcscd's log, for Diagnostics.
func (p *PCSC) LogMark() int64 {
	st, err := os.Stat(filepath.Join(p.dir, "pcscd.log"))
	if err != nil {
		return 0
	}
	return st.Size()
}

// Diagnostics describes the private pcscd for a failing test: the TCP
// sockets of its network namespace (vpcd's listeners and card connections,
// with their queues) and what pcscd logged since mark (LogMark), at most
// the last 256 KiB of it. Set HWAUTHD_TEST_PCSCD_DEBUG=1 for pcscd's debug
// log.
func (p *PCSC) Diagnostics(mark int64) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ss, err := p.NetnsCommand(ctx, "ss", "-tanoi").CombinedOutput()
	if err != nil {
		ss = append(ss, []byte("ss: "+err.Error())...)
	}
	b, _ := os.ReadFile(filepath.Join(p.dir, "pcscd.log"))
	b = b[min(mark, int64(len(b))):]
	const maxLog = 256 << 10
	if len(b) > maxLog {
		b = b[len(b)-maxLog:]
	}
	return fmt.Sprintf("pcscd network namespace:\n%s\npcscd log since the test began:\n%s", ss, b)
}

// SocketPath returns the path of pcscd's client socket (PCSCLITE_CSOCK_NAME).
func (p *PCSC) SocketPath() string { return p.sock }

// Env returns the process environment with PCSCLITE_CSOCK_NAME pointing at
// the private pcscd, for starting PC/SC clients.
func (p *PCSC) Env() []string {
	return append(os.Environ(), "PCSCLITE_CSOCK_NAME="+p.sock)
}

// ReaderName returns the PC/SC name of vpcd reader i (0 or 1).
func (p *PCSC) ReaderName(i int) string {
	return fmt.Sprintf("%s 00 %02d", readerFriendlyName, i)
}

// VPCDAddr returns the address ("127.0.0.1:PORT") that vpcd reader i listens
// on inside the private network namespace; only DialReader and programs
// started with NetnsCommand can reach it.
func (p *PCSC) VPCDAddr(i int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(vpcdPort+i))
}

// Command returns a command for a PC/SC client (opensc-tool, pkcs11-tool,
// yubico-piv-tool) that talks to the private pcscd.
func (p *PCSC) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = p.Env()
	return cmd
}

// NetnsCommand returns a command that runs inside pcscd's private network
// namespace (through nsenter), so that an emulated card program can connect
// to VPCDAddr. It fails at Run when pcscd is not running.
func (p *PCSC) NetnsCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	all := append([]string{"--net=" + p.netnsPath(), "--", name}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", all...)
	cmd.Env = p.Env()
	return cmd
}

func (p *PCSC) netnsPath() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return "/nonexistent/pcscd-not-running"
	}
	return fmt.Sprintf("/proc/%d/ns/net", p.proc.Pid)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
