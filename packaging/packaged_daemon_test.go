package packaging_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/internal/testenv/pcscenv"
	"github.com/hwauthd/hwauthd/ipc"
)

// The packaged paths the test relies on, as the package and its unit name
// them (packaging/nfpm.yaml, packaging/systemd/hwauthd.service).
const (
	pkgDaemon  = "/usr/sbin/hwauthd"
	pkgCtl     = "/usr/bin/hwauthctl"
	pkgConfig  = "/etc/hwauthd/hwauthd.toml"
	pkgSocket  = "/run/hwauthd/hwauthd.sock"
	pkgDB      = "/var/lib/hwauthd/hwauthd.db"
	pcscdSock  = "/run/pcscd/pcscd.comm" // the system pcscd's standard socket
	vpcdConfig = "/etc/reader.conf.d/vpcd"
	vpcdPortNo = 35963 // 0x8C7B, vsmartcard's default; the network namespace is ours alone
	cardPIN    = "123456"
)

// packagedTimeout bounds each wait for a process or socket of the test.
const packagedTimeout = 15 * time.Second

// TestPackagedDaemon runs the installed package the way a Debian 12 machine
// does (issue #8): in an overlay of this machine with the package installed
// by dpkg, a system pcscd on its standard socket with a vpcd reader, an
// emulated PIV card in that reader, and /usr/sbin/hwauthd as the user
// hwauthd with the packaged configuration. The packaged hwauthctl, as root,
// then finds the card, verifies its PIN and signs with it, and the signature
// is checked against the card's certificate.
func TestPackagedDaemon(t *testing.T) {
	testenv.RequireBinaries(t, "pcscd", "nsenter", "setpriv", "ip", "systemd-tmpfiles")
	testenv.RequireFiles(t, pcscenv.VPCDDriver)
	_, deb := buildDeb(t)
	card := buildPivcard(t)
	o := newOverlay(t)
	o.install(t, deb)
	writeVPCDConfig(t, o)
	uid, gid := o.userIDs(t, "hwauthd")

	sys := bootSystem(t, o)
	sys.startCard(t, card)
	d := sys.startDaemon(t)
	d.waitSocket(t)

	au := d.waitCard(t)
	checkStatus(t, sys)
	verifyPIN(t, sys, au.ID)
	checkSignature(t, sys, au.ID)
	checkDaemonProcess(t, sys, d.cmd.Process.Pid, uid, gid)
	checkStateFile(t, sys, uid, gid)
	sys.stop(t, d)
}

// buildPivcard builds pcsc/pcsctest/pivcard, the emulated card, into a temporary
// directory.
func buildPivcard(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir, "./pcsc/pcsctest/pivcard")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./pcsc/pcsctest/pivcard: %v\n%s", err, out)
	}
	return filepath.Join(dir, "pivcard")
}

// writeVPCDConfig gives the overlay's system pcscd one vpcd reader (the file
// vsmartcard-vpcd installs, with a known port).
func writeVPCDConfig(t *testing.T, o *overlay) {
	t.Helper()
	conf := fmt.Sprintf("FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:0x%X\nLIBPATH %s\nCHANNELID 0x%X\n",
		vpcdPortNo, pcscenv.VPCDDriver, vpcdPortNo)
	p := filepath.Join(o.upper, vpcdConfig)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// userIDs returns the uid and gid of a user of the overlay, from its
// /etc/passwd (the package's sysusers.d entry created it there).
func (o *overlay) userIDs(t *testing.T, name string) (uid, gid int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(o.upper, "etc/passwd"))
	if err != nil {
		t.Fatalf("the package created no user: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 4 && f[0] == name {
			uid, err1 := strconv.Atoi(f[2])
			gid, err2 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil {
				t.Fatalf("bad passwd line %q", l)
			}
			return uid, gid
		}
	}
	t.Fatalf("no user %s in the overlay's /etc/passwd", name)
	return 0, 0
}

// system is the overlay booted: a mount and a network namespace whose first
// process, the system pcscd, is chrooted into the overlay. Other programs
// join it with nsenter.
type system struct {
	pcscd *proc
	card  *proc  // the emulated card, once started
	netns string // the network namespace's identity, readlink of /proc/PID/ns/net
}

// proc is a process the test started, with its output and a channel closed
// when it has exited.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan struct{}
	err  error // cmd.Wait's result, set before done is closed
}

// start starts cmd, with cleanEnv when it has no environment of its own,
// and stops it, if the test has not, when the test ends.
func start(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, out: &testenv.Buffer{}, done: make(chan struct{})}
	if cmd.Env == nil {
		cmd.Env = cleanEnv()
	}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Kills the process if the test binary dies without its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	return p
}

// cleanEnv is the environment of the programs the test starts: a PATH only,
// as systemd gives a service, and no PCSCLITE_CSOCK_NAME, so that every
// PC/SC client finds the system pcscd.
func cleanEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
}

// signal sends sig to the process and waits until it has exited.
func (p *proc) signal(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Errorf("signal %s: %v", p.name, err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(packagedTimeout):
		t.Fatalf("%s did not exit within %v of %v:\n%s", p.name, packagedTimeout, sig, p.out.String())
		return nil
	}
}

// bootSystem starts the namespaces with the system pcscd in them, as the
// machine's boot would: systemd-tmpfiles creates the packaged runtime
// directories, then pcscd starts with its standard configuration
// (/etc/reader.conf.d) and socket.
func bootSystem(t *testing.T, o *overlay) *system {
	t.Helper()
	cmd := o.command("systemd-tmpfiles --create hwauthd.conf && exec pcscd --foreground", true)
	// pcscd, too, would take its socket from PCSCLITE_CSOCK_NAME.
	cmd.Env = slices.DeleteFunc(cmd.Env, func(e string) bool { return strings.HasPrefix(e, "PCSCLITE_") })
	s := &system{pcscd: start(t, "pcscd", cmd)}
	root := s.procRoot()
	waitFor(t, "pcscd's socket "+pcscdSock, s.pcscd, func() bool { return socketAccepts(root + pcscdSock) })
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", s.pcscd.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	s.netns = link
	t.Cleanup(func() {
		for _, p := range s.procsLeft() {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		s.sweep(t)
	})
	return s
}

// procRoot is the overlay's root as the test sees it, through pcscd.
func (s *system) procRoot() string { return fmt.Sprintf("/proc/%d/root", s.pcscd.cmd.Process.Pid) }

// enter returns a command that runs name inside the system: in its
// namespaces and chrooted into the overlay.
func (s *system) enter(name string, args ...string) *exec.Cmd {
	pid := strconv.Itoa(s.pcscd.cmd.Process.Pid)
	return exec.Command("nsenter", append([]string{"-t", pid, "-m", "-n", "-r", "-w", "--", name}, args...)...)
}

// startCard runs the emulated card, a program of the host, in the system's
// network namespace, where the vpcd reader listens.
func (s *system) startCard(t *testing.T, pivcard string) {
	t.Helper()
	pid := strconv.Itoa(s.pcscd.cmd.Process.Pid)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(vpcdPortNo))
	s.card = start(t, "pivcard", exec.Command("nsenter", "-t", pid, "-n", "--", pivcard, "--vpcd", addr))
}

// startDaemon runs the packaged daemon as the unit does: as the user hwauthd
// with its groups (tss through sysusers.d), a reset environment and the
// packaged configuration. The umask is the usual 022, not the unit's 0077,
// so that the state file's mode is the daemon's own doing.
func (s *system) startDaemon(t *testing.T) *daemonProc {
	t.Helper()
	cmd := s.enter("setpriv", "--reuid=hwauthd", "--regid=hwauthd", "--init-groups", "--reset-env",
		"--pdeathsig=KILL", "--", "/bin/sh", "-c", `umask 022 && exec "$@"`, "sh",
		pkgDaemon, "--config", pkgConfig)
	return &daemonProc{proc: start(t, "hwauthd", cmd), sys: s}
}

// daemonProc is the running hwauthd.
type daemonProc struct {
	*proc
	sys *system
}

// waitSocket waits until the daemon's packaged socket accepts connections.
func (d *daemonProc) waitSocket(t *testing.T) {
	t.Helper()
	path := d.sys.procRoot() + pkgSocket
	waitFor(t, "hwauthd's socket "+pkgSocket, d.proc, func() bool { return socketAccepts(path) })
}

// ctl runs the packaged hwauthctl as root inside the system, with stdin as
// its input, and returns its standard output.
func (s *system) ctl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := s.tryCtl(stdin, args...)
	if err != nil {
		t.Fatalf("hwauthctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *system) tryCtl(stdin string, args ...string) (string, error) {
	cmd := s.enter(pkgCtl, append([]string{"--socket", pkgSocket}, args...)...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// ctlJSON runs hwauthctl --json with stdin as its input and decodes its
// output into v.
func (s *system) ctlJSON(t *testing.T, v any, stdin string, args ...string) {
	t.Helper()
	out := s.ctl(t, stdin, append([]string{"--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("hwauthctl --json %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// checkStatus checks that the daemon reaches the system pcscd and reports
// the TPM and FIDO backends without failing: this machine has no TPM and no
// security key.
func checkStatus(t *testing.T, s *system) {
	t.Helper()
	var st ipc.Status
	s.ctlJSON(t, &st, "", "status")
	pcsc := st.Backends["pcsc"]
	if pcsc.State != ipc.BackendUp || pcsc.Readers == nil || *pcsc.Readers < 1 {
		t.Errorf("pcsc backend %+v, want up with the vpcd reader", pcsc)
	}
	if tpm := st.Backends["tpm"]; tpm.State != ipc.BackendAbsent {
		t.Errorf("tpm backend %+v, want absent", tpm)
	}
	if fido := st.Backends["fido2"]; fido.State != ipc.BackendUp || fido.Devices == nil || *fido.Devices != 0 {
		t.Errorf("fido2 backend %+v, want up with no devices", fido)
	}
}

// waitCard waits until hwauthctl list shows the emulated card as a PIV smart
// card and returns it.
func (d *daemonProc) waitCard(t *testing.T) ipc.Authenticator {
	t.Helper()
	var found ipc.Authenticator
	waitFor(t, "the card in hwauthctl list", d.proc, func() bool {
		out, err := d.sys.tryCtl("", "--json", "list")
		var list ipc.AuthenticatorsResponse
		if err != nil || json.Unmarshal([]byte(out), &list) != nil {
			return false
		}
		for _, a := range list.Authenticators {
			if a.Kind == "smartcard" && a.Backend == "piv" {
				found = a
				return true
			}
		}
		return false
	})
	return found
}

// verifyPIN verifies the card's PIN through hwauthctl.
func verifyPIN(t *testing.T, s *system, id string) {
	t.Helper()
	var res ipc.PINResult
	s.ctlJSON(t, &res, cardPIN+"\n", "--pin-stdin", "pin", "verify", id)
	if !res.Verified || res.Blocked {
		t.Errorf("pin verify answered %+v, want verified", res)
	}
}

// checkSignature signs a file with the card's key 9a through hwauthctl and
// verifies the signature with the public key of the card's certificate.
func checkSignature(t *testing.T, s *system, id string) {
	t.Helper()
	doc := []byte("signed by the packaged hwauthd, " + time.Now().UTC().Format(time.RFC3339Nano) + "\n")
	if err := os.WriteFile(s.procRoot()+"/tmp/doc.txt", doc, 0o644); err != nil {
		t.Fatal(err)
	}
	s.ctl(t, cardPIN+"\n", "--pin-stdin", "sign", id, "--key", "9a", "--file", "/tmp/doc.txt", "--out", "/tmp/doc.sig")
	sig, err := os.ReadFile(s.procRoot() + "/tmp/doc.sig")
	if err != nil {
		t.Fatal(err)
	}
	var au ipc.Authenticator
	s.ctlJSON(t, &au, "", "show", id)
	pub := certKey(t, au, "9a")
	digest := sha256.Sum256(doc)
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Errorf("the signature (%d bytes) does not verify with the certificate of slot 9a", len(sig))
	}
	digest[0] ^= 1
	if ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Error("the signature also verifies for another digest")
	}
}

// certKey returns the ECDSA public key of the certificate of key id.
func certKey(t *testing.T, au ipc.Authenticator, id string) *ecdsa.PublicKey {
	t.Helper()
	for _, k := range au.Keys {
		if k.ID != id {
			continue
		}
		block, _ := pem.Decode([]byte(k.Certificate))
		if block == nil {
			t.Fatalf("key %s has no certificate: %+v", id, k)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("certificate of key %s: %v", id, err)
		}
		pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok {
			t.Fatalf("certificate of key %s holds a %T, want ECDSA", id, cert.PublicKey)
		}
		return pub
	}
	t.Fatalf("%s has no key %s: %+v", au.ID, id, au.Keys)
	return nil
}

// checkDaemonProcess checks, from /proc, that the daemon runs as hwauthd
// with the group tss, no capabilities and no PCSCLITE_CSOCK_NAME.
func checkDaemonProcess(t *testing.T, s *system, pid, uid, gid int) {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, l := range strings.Split(string(st), "\n") {
		k, v, _ := strings.Cut(l, ":")
		fields[k] = strings.Join(strings.Fields(v), " ")
	}
	wantUID, wantGID := strings.Repeat(strconv.Itoa(uid)+" ", 4), strings.Repeat(strconv.Itoa(gid)+" ", 4)
	if fields["Name"] != "hwauthd" || fields["Uid"]+" " != wantUID || fields["Gid"]+" " != wantGID {
		t.Errorf("daemon process: Name %q Uid %q Gid %q, want hwauthd running as %d:%d",
			fields["Name"], fields["Uid"], fields["Gid"], uid, gid)
	}
	if fields["CapEff"] != "0000000000000000" {
		t.Errorf("daemon process has capabilities %s", fields["CapEff"])
	}
	tss := strings.TrimSpace(s.ctlShell(t, "getent group tss | cut -d: -f3"))
	if !strings.Contains(" "+fields["Groups"]+" ", " "+tss+" ") {
		t.Errorf("daemon process groups %q lack tss (%s)", fields["Groups"], tss)
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(env, []byte("PCSCLITE_CSOCK_NAME")) {
		t.Errorf("daemon environment names another pcscd: %q", env)
	}
}

// ctlShell runs a shell command as root inside the system.
func (s *system) ctlShell(t *testing.T, script string) string {
	t.Helper()
	cmd := s.enter("/bin/sh", "-ec", script)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// checkStateFile checks the registry file the daemon created in the
// packaged state directory: owned by hwauthd, readable by it alone.
func checkStateFile(t *testing.T, s *system, uid, gid int) {
	t.Helper()
	fi, err := os.Stat(s.procRoot() + pkgDB)
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode() != 0o600 {
		t.Errorf("%s: %v %d:%d, want -rw------- %d:%d", pkgDB, fi.Mode(), st.Uid, st.Gid, uid, gid)
	}
	fi, err = os.Stat(s.procRoot() + "/run/hwauthd")
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || fi.Mode().Perm() != 0o755 {
		t.Errorf("/run/hwauthd: %v uid %d, want 0755 uid %d", fi.Mode(), st.Uid, uid)
	}
}

// stop stops the daemon, then the card, then pcscd, each with SIGTERM,
// which must end it cleanly, and checks that nothing is left in the
// namespaces (the daemon's PKCS#11 helper among them).
func (s *system) stop(t *testing.T, d *daemonProc) {
	t.Helper()
	if err := d.signal(t, syscall.SIGTERM); err != nil {
		t.Errorf("hwauthd after SIGTERM: %v\n%s", err, d.out.String())
	}
	if _, err := os.Stat(s.procRoot() + pkgDB); err != nil {
		t.Errorf("state file gone after stop: %v", err)
	}
	for _, p := range s.procsLeft() {
		if p != s.pcscd.cmd.Process.Pid && p != s.card.cmd.Process.Pid {
			t.Errorf("process %d (%s) still runs after hwauthd stopped", p, procName(p))
		}
	}
	for _, p := range []*proc{s.card, s.pcscd} {
		if err := p.signal(t, syscall.SIGTERM); err != nil {
			t.Errorf("%s after SIGTERM: %v\n%s", p.name, err, p.out.String())
		}
	}
	s.sweep(t)
}

// procsLeft lists the processes in the system's network namespace.
func (s *system) procsLeft() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && link == s.netns {
			pids = append(pids, pid)
		}
	}
	return pids
}

func procName(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// sweep waits until no process is left in the system's namespaces, and
// kills and reports those still there at the deadline.
func (s *system) sweep(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(packagedTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		left := s.procsLeft()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				t.Errorf("process %d (%s) left behind; killing it", p, procName(p))
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			return
		}
	}
}

// waitFor polls cond until it holds, failing the test when p exits first or
// the deadline passes: the sockets and pcscd offer nothing to wait on.
func waitFor(t *testing.T, what string, p *proc, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(packagedTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-p.done:
			t.Fatalf("waiting for %s: %s exited: %v\n%s", what, p.name, p.err, p.out.String())
		case <-deadline.C:
			t.Fatalf("no %s after %v; %s says:\n%s", what, packagedTimeout, p.name, p.out.String())
		case <-tick.C:
		}
	}
}

func socketAccepts(path string) bool {
	c, err := net.Dial("unix", path)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
