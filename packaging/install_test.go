package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hwauthd/hwauthd/internal/testenv"
)

// overlay is a copy-on-write view of this machine's root: dpkg and the
// maintainer scripts run chrooted into it, every change lands in the upper
// layer (on a tmpfs) and vanishes with it.
type overlay struct{ upper, work, merged string }

func newOverlay(t *testing.T) *overlay {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t, "unshare", "chroot", "mount")
	base := t.TempDir()
	if err := syscall.Mount("tmpfs", base, "tmpfs", 0, "size=512m,mode=0755"); err != nil {
		testenv.Missing(t, "mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(base, syscall.MNT_DETACH) })
	o := &overlay{filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "root")}
	for _, d := range []string{o.upper, o.work, o.merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := o.exec("true"); err != nil {
		testenv.Missing(t, "overlay of / not possible here: %v\n%s", err, out)
	}
	return o
}

// exec runs script with /bin/sh chrooted into the overlay, in a private mount
// namespace where /run and /tmp are empty (no systemd, udev or pcscd seems to
// run, so the maintainer scripts touch nothing outside).
func (o *overlay) exec(script string) (string, error) {
	out, err := o.command(script, false).CombinedOutput()
	return string(out), err
}

// command returns the command that mounts the overlay in a private mount
// namespace (and, with netns, a private network namespace with only lo, up)
// and runs script in it with /bin/sh, chrooted into the overlay. The last
// program script execs keeps the command's pid, and the namespaces live as
// long as a process runs in them.
func (o *overlay) command(script string, netns bool) *exec.Cmd {
	setup := `mount -t overlay overlay -o lowerdir=/,upperdir=$U,workdir=$W $R
mount --rbind /dev $R/dev
mount -t proc proc $R/proc
mount -t tmpfs -o mode=0755 tmpfs $R/run
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
exec chroot $R /bin/sh -ec "$1"`
	args := []string{"-m", "--propagation", "private"}
	if netns {
		args = append(args, "-n")
		setup = "ip link set lo up\n" + setup
	}
	cmd := exec.Command("unshare", append(args, "sh", "-c", "set -e\n"+setup, "overlay", script)...)
	cmd.Env = append(os.Environ(), "U="+o.upper, "W="+o.work, "R="+o.merged)
	return cmd
}

func (o *overlay) must(t *testing.T, script string) string {
	t.Helper()
	out, err := o.exec(script)
	if err != nil {
		t.Fatalf("in overlay: %s: %v\n%s", script, err, out)
	}
	return out
}

// exists reports whether path exists in the upper layer (what the package
// and its scripts added to the machine). On a merged-/usr system, /lib/…
// lands in /usr/lib/….
func (o *overlay) exists(path string) bool {
	for _, p := range []string{path, "/usr" + path} {
		fi, err := os.Lstat(filepath.Join(o.upper, p))
		if err == nil && fi.Mode()&os.ModeCharDevice == 0 { // a whiteout is a 0/0 char device
			return true
		}
	}
	return false
}

// install installs the package deb with dpkg into the overlay.
func (o *overlay) install(t *testing.T, deb string) {
	t.Helper()
	// The .deb lives under /tmp, which is empty in the overlay.
	if err := os.MkdirAll(filepath.Join(o.upper, "var/cache/hwauthd-test"), 0o755); err != nil {
		t.Fatal(err)
	}
	inside := "/var/cache/hwauthd-test/hwauthd.deb"
	copyFile(t, deb, filepath.Join(o.upper, inside))
	o.must(t, "dpkg -i "+inside)
}

// TestInstallRemovePurge installs the package with dpkg into an overlay of
// this machine, checks the user, groups, directories and units, then removes
// it (the configuration stays) and purges it (nothing stays but the user).
func TestInstallRemovePurge(t *testing.T) {
	_, deb := buildDeb(t)
	o := newOverlay(t)
	o.install(t, deb)
	for _, f := range shipped {
		if !o.exists(f) {
			t.Errorf("after install: %s missing", f)
		}
	}
	id := o.must(t, "id hwauthd")
	for _, g := range []string{"(hwauthd)", "(tss)"} {
		if !strings.Contains(id, g) {
			t.Errorf("id hwauthd = %q, want group %s", id, g)
		}
	}
	for _, g := range []string{"hwauth-admin", "hwauth-signin"} {
		o.must(t, "getent group "+g)
	}
	if st := strings.TrimSpace(o.must(t, "stat -c '%U %a' /var/lib/hwauthd")); st != "hwauthd 700" {
		t.Errorf("/var/lib/hwauthd is %q, want hwauthd 700", st)
	}
	if !o.exists("/etc/systemd/system/sockets.target.wants/hwauthd.socket") {
		t.Error("hwauthd.socket not enabled")
	}
	verifyUnits(t, o)
	pamProfile(t, o)

	o.must(t, "echo '# local change' >> /etc/hwauthd/hwauthd.toml; dpkg -r hwauthd")
	if !o.exists("/etc/hwauthd/hwauthd.toml") {
		t.Error("dpkg -r removed the configuration")
	}
	for _, f := range []string{"/usr/sbin/hwauthd", "/lib/systemd/system/hwauthd.service"} {
		if o.exists(f) {
			t.Errorf("after remove: %s still there", f)
		}
	}

	if strings.Contains(o.must(t, "cat /etc/pam.d/common-auth"), "pam_hwauth") {
		t.Error("after remove: common-auth still runs pam_hwauth.so")
	}

	o.must(t, "dpkg -P hwauthd")
	for _, f := range append(shipped, "/etc/hwauthd", "/var/lib/hwauthd",
		"/etc/systemd/system/sockets.target.wants/hwauthd.socket",
		"/var/lib/systemd/deb-systemd-helper-enabled/hwauthd.socket.dsh-also") {
		if o.exists(f) {
			t.Errorf("after purge: %s still there", f)
		}
	}
	if st := o.must(t, "dpkg-query -W -f='${db:Status-Status}' hwauthd 2>&1 || true"); strings.Contains(st, "installed") {
		t.Errorf("after purge dpkg still knows hwauthd: %q", st)
	}
}

// pamProfile checks the pam-auth-update profile: installing leaves the PAM
// stack as it was (off by default); enabling puts pam_hwauth.so before the
// password in common-auth and in common-session. The removal in prerm is
// checked by the caller's dpkg -r (common-auth without the module).
func pamProfile(t *testing.T, o *overlay) {
	t.Helper()
	if o.exists("/etc/pam.d/common-auth") && strings.Contains(o.must(t, "cat /etc/pam.d/common-auth"), "pam_hwauth") {
		t.Fatal("installing the package turned the PAM module on")
	}
	o.must(t, "pam-auth-update --force --enable hwauthd")
	auth := o.must(t, "grep -v '^#' /etc/pam.d/common-auth")
	hw, unix := strings.Index(auth, "pam_hwauth.so"), strings.Index(auth, "pam_unix.so")
	if hw < 0 || unix < 0 || hw > unix || !strings.Contains(auth, "[success=2 default=ignore]\tpam_hwauth.so") {
		t.Fatalf("common-auth after pam-auth-update --enable hwauthd:\n%s", auth)
	}
	if sess := o.must(t, "cat /etc/pam.d/common-session"); !strings.Contains(sess, "optional\tpam_hwauth.so") {
		t.Fatalf("common-session:\n%s", sess)
	}
	// The installed module runs the installed helper: with no daemon on
	// the socket, the helper says so and the stack goes on to the password
	// (which stdin does not give).
	out, err := o.exec("printf '@include common-auth\\n' >/etc/pam.d/hwtest; pamtester hwtest root authenticate </dev/null")
	if err == nil || !strings.Contains(out, "(hwauthd) is not running") {
		t.Fatalf("pamtester through the installed module: %v\n%s", err, out)
	}
}

// verifyUnits runs systemd-analyze verify on the installed units, inside the
// overlay where the programs, man pages and user exist.
func verifyUnits(t *testing.T, o *overlay) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		testenv.Missing(t, "systemd-analyze: %v", err)
		return
	}
	out, err := o.exec("SYSTEMD_LOG_LEVEL=notice systemd-analyze verify hwauthd.socket hwauthd.service")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	sec, _ := o.exec("systemd-analyze security --offline=yes --no-pager /lib/systemd/system/hwauthd.service | tail -1")
	t.Logf("systemd-analyze security: %s", strings.TrimSpace(sec))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
