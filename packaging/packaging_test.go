// Package packaging_test builds the hwauthd Debian package with
// scripts/package.sh and checks it: its files and metadata (dpkg-deb),
// lintian, installing, removing and purging it with dpkg in a throwaway
// overlay of this machine's root, systemd-analyze verify on the installed
// units, the plain install, and the generated files against the code.
//
// The binaries are built from ./cmd once per run; HWAUTHD_TEST_BINDIR names a
// directory with hwauthd and hwauthctl already built instead.
package packaging_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hwauthd/hwauthd/internal/testenv"
)

// repoRoot is the repository root, relative to this package.
const repoRoot = ".."

var (
	debOnce  sync.Once
	debBuild string // the BUILD directory of package.sh
	debFile  string
	debErr   string
)

// TestMain removes the shared build directory after the tests.
func TestMain(m *testing.M) {
	testenv.AtExit(func() {
		if debBuild != "" {
			os.RemoveAll(debBuild)
		}
	})
	testenv.Main(m)
}

// buildDeb runs `scripts/package.sh deb` once and returns its build
// directory and the .deb.
func buildDeb(t *testing.T) (build, deb string) {
	t.Helper()
	testenv.RequireBinaries(t, "go", "dpkg-deb", "dpkg", "gzip")
	debOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hwauthd-deb-")
		if err != nil {
			debErr = err.Error()
			return
		}
		debBuild = dir
		cmd := exec.Command("./scripts/package.sh", "deb")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "BUILD="+dir, "VERSION=0.1.0~test",
			"BINDIR="+os.Getenv("HWAUTHD_TEST_BINDIR"))
		if out, err := cmd.CombinedOutput(); err != nil {
			debErr = "package.sh deb: " + err.Error() + "\n" + string(out)
			return
		}
		debFile = filepath.Join(dir, "hwauthd_0.1.0~test_"+debArch()+".deb")
	})
	if debErr != "" {
		t.Fatal(debErr)
	}
	return debBuild, debFile
}

func debArch() string {
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// run runs a command and fails the test with its output when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// shipped lists the files the package must contain.
var shipped = []string{
	"/usr/sbin/hwauthd",
	"/usr/bin/hwauthctl",
	"/usr/libexec/hwauthd/hwauthd-pam-helper",
	"/etc/hwauthd/hwauthd.toml",
	"/lib/systemd/system/hwauthd.service",
	"/lib/systemd/system/hwauthd.socket",
	"/usr/lib/sysusers.d/hwauthd.conf",
	"/usr/lib/tmpfiles.d/hwauthd.conf",
	"/lib/udev/rules.d/70-hwauthd-fido.rules",
	"/usr/share/polkit-1/rules.d/50-hwauthd.rules",
	"/usr/share/pam-configs/hwauthd",
	"/usr/lib/pcsc/drivers/serial/libifdhwauthd.so",
	"/etc/reader.conf.d/hwauthd",
	"/usr/share/man/man8/hwauthd.8.gz",
	"/usr/share/man/man8/pam_hwauth.8.gz",
	"/usr/share/man/man1/hwauthctl.1.gz",
	"/usr/share/man/man5/hwauthd.toml.5.gz",
	"/usr/share/bash-completion/completions/hwauthctl",
	"/usr/share/zsh/vendor-completions/_hwauthctl",
	"/usr/share/fish/vendor_completions.d/hwauthctl.fish",
	"/usr/share/doc/hwauthd/copyright",
	"/usr/share/doc/hwauthd/changelog.gz",
	"/usr/share/doc/hwauthd/api.md.gz",
	"/usr/share/man/man8/hwauthd-pkcs11.8.gz",
}

func TestDebContents(t *testing.T) {
	_, deb := buildDeb(t)
	list := run(t, "dpkg-deb", "-c", deb)
	for _, f := range shipped {
		if !strings.Contains(list, " ."+f+"\n") {
			t.Errorf("package lacks %s", f)
		}
	}
	// The emulators are test support (pcsc/pcsctest, fido/fidotest): none ships.
	for _, emulator := range []string{"pivcard", "vicc", "vfido", "softkey"} {
		if strings.Contains(list, emulator) {
			t.Errorf("package ships the test emulator %s:\n%s", emulator, list)
		}
	}
	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Depends", "Section"} {
		fields[f] = strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, f))
	}
	if fields["Package"] != "hwauthd" || fields["Version"] != "0.1.0~test" || fields["Architecture"] != debArch() {
		t.Errorf("control fields %v", fields)
	}
	for _, dep := range []string{"pcscd", "libpcsclite1", "libfido2-1", "libc6"} {
		if !strings.Contains(fields["Depends"], dep) {
			t.Errorf("Depends %q lacks %s", fields["Depends"], dep)
		}
	}
	if conf := run(t, "dpkg-deb", "-I", deb, "conffiles"); strings.TrimSpace(conf) != "/etc/hwauthd/hwauthd.toml\n/etc/reader.conf.d/hwauthd" {
		t.Errorf("conffiles = %q", conf)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if body := run(t, "dpkg-deb", "-I", deb, s); !strings.HasPrefix(body, "#!/bin/sh") {
			t.Errorf("%s missing or without #!/bin/sh", s)
		}
	}
}

// TestLintian wants the package clean at lintian's pedantic level: no
// error, warning, info or pedantic tag (overrides are not used).
func TestLintian(t *testing.T) {
	testenv.RequireBinaries(t, "lintian")
	_, deb := buildDeb(t)
	out, _ := exec.Command("lintian", "--pedantic", "--info", "--tag-display-limit", "0", deb).CombinedOutput()
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case len(l) > 2 && strings.Contains("EWIPX", l[:1]) && l[1] == ':':
			t.Errorf("lintian: %s", l)
		case l != "":
			t.Logf("lintian: %s", l)
		}
	}
}

// TestPlainInstall installs into a DESTDIR with a PREFIX and checks that the
// units run the program from there.
func TestPlainInstall(t *testing.T) {
	build, _ := buildDeb(t)
	dest := t.TempDir()
	cmd := exec.Command("./scripts/package.sh", "install")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "BUILD="+build, "BINDIR="+build, "DESTDIR="+dest, "PREFIX=/opt/hw", "VERSION=0.1.0~test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("package.sh install: %v\n%s", err, out)
	}
	multiarch, err := exec.Command("gcc", "-print-multiarch").Output()
	if err != nil {
		t.Fatal(err)
	}
	// The PAM module and the polkit rule go where libpam and polkit read
	// them, whatever the prefix; zsh reads site-functions below /usr.
	for _, f := range []string{"/opt/hw/sbin/hwauthd", "/opt/hw/bin/hwauthctl", "/etc/hwauthd/hwauthd.toml",
		"/opt/hw/lib/systemd/system/hwauthd.socket", "/opt/hw/share/man/man5/hwauthd.toml.5.gz",
		"/opt/hw/share/man/man8/hwauthd-pkcs11.8.gz", "/opt/hw/share/doc/hwauthd/copyright",
		"/lib/" + strings.TrimSpace(string(multiarch)) + "/security/pam_hwauth.so",
		"/etc/polkit-1/rules.d/50-hwauthd.rules", "/opt/hw/share/zsh/site-functions/_hwauthctl"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	unit, err := os.ReadFile(filepath.Join(dest, "/opt/hw/lib/systemd/system/hwauthd.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(unit, []byte("ExecStart=/opt/hw/sbin/hwauthd --config /etc/hwauthd/hwauthd.toml\n")) {
		t.Errorf("installed unit does not run the installed program:\n%s", unit)
	}
	module, err := os.ReadFile(filepath.Join(dest, "/lib/"+strings.TrimSpace(string(multiarch))+"/security/pam_hwauth.so"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, "/opt/hw/libexec/hwauthd/hwauthd-pam-helper")); err != nil || !bytes.Contains(module, []byte("/opt/hw/libexec/hwauthd/hwauthd-pam-helper\x00")) {
		t.Errorf("the installed PAM module does not run the installed helper (%v)", err)
	}
}
