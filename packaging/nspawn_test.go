package packaging_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
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

	"github.com/hwauthd/hwauthd/internal/testenv"
)

// The Debian release the system test boots, and the packages its root file
// system holds besides the .deb's own dependencies: an init, D-Bus, the
// vpcd reader driver for the emulated card, OpenSC's opensc-tool to see the
// card as pcscd does, pamtester for the PAM stack, and pam_systemd and
// polkitd so that logind registers login sessions and asks polkit before
// it locks one for hwauthd.
const (
	rootfsSuite = "bookworm"
	// rootfsLayout changes the cache key when the way the tree is made
	// changes.
	rootfsLayout = "1"
)

var rootfsBase = []string{"systemd", "systemd-sysv", "dbus", "libpam-systemd", "polkitd", "pcscd", "vsmartcard-vpcd", "opensc", "pamtester"}

// rootfsCacheDir is where the root file systems are kept between runs
// (HWAUTHD_TEST_CACHE overrides it). It is outside the build directory on
// purpose: CI builds a fresh clone every time, and creating the tree takes
// about a minute where copying-on-write it takes nothing.
func rootfsCacheDir() string {
	if d := os.Getenv("HWAUTHD_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/hwauthd-test"
}

// debianRootfs returns a minimal Debian root file system that holds the
// packages deb depends on, creating it with debootstrap from the machine's
// configured Debian mirror when the cache has none. The tree is never
// modified afterwards: containers boot it with a throwaway overlay.
func debianRootfs(t *testing.T, deb string) string {
	t.Helper()
	testenv.RequireBinaries(t, "debootstrap")
	mirror, err := aptMirror("/etc/apt", rootfsSuite)
	if err != nil {
		testenv.Missing(t, "no Debian mirror for debootstrap: %v", err)
	}
	include := rootfsPackages(t, deb)
	sum := sha256.Sum256([]byte(strings.Join(append([]string{rootfsLayout, rootfsSuite, mirror}, include...), "\n")))
	dir := rootfsCacheDir()
	tree := filepath.Join(dir, rootfsSuite+"-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// One creator at a time; the others wait and then find it made.
	lock, err := os.OpenFile(filepath.Join(dir, "rootfs.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tree, "etc/os-release")); err == nil {
		return tree
	}
	tmp := tree + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	cmd := exec.Command("debootstrap", "--variant=minbase", "--include="+strings.Join(include, ","),
		rootfsSuite, tmp, mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		t.Fatalf("debootstrap %s from %s: %v\n%s", rootfsSuite, mirror, err, tail(out, 40))
	}
	// The downloaded archives are a third of the tree and never used again.
	archives, _ := filepath.Glob(filepath.Join(tmp, "var/cache/apt/archives/*.deb"))
	for _, a := range archives {
		os.Remove(a)
	}
	if err := os.Rename(tmp, tree); err != nil {
		t.Fatal(err)
	}
	t.Logf("created the Debian %s root file system %s in %v", rootfsSuite, tree, time.Since(began).Round(time.Second))
	return tree
}

// rootfsPackages is rootfsBase and what deb depends on (the first of each
// set of alternatives), sorted.
func rootfsPackages(t *testing.T, deb string) []string {
	t.Helper()
	pkgs := slices.Clone(rootfsBase)
	for _, dep := range strings.Split(run(t, "dpkg-deb", "-f", deb, "Depends"), ",") {
		first, _, _ := strings.Cut(dep, "|")
		name, _, _ := strings.Cut(strings.TrimSpace(first), " ")
		if name != "" {
			pkgs = append(pkgs, name)
		}
	}
	slices.Sort(pkgs)
	return slices.Compact(pkgs)
}

// aptMirror returns the URI of the first Debian archive that apt's sources
// under dir (sources.list and sources.list.d, one-line and deb822 formats)
// use for suite's binary packages.
func aptMirror(dir, suite string) (string, error) {
	files := []string{filepath.Join(dir, "sources.list")}
	more, _ := filepath.Glob(filepath.Join(dir, "sources.list.d", "*"))
	files = append(files, more...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var uri string
		if strings.HasSuffix(f, ".sources") {
			uri = deb822Mirror(string(b), suite)
		} else if strings.HasSuffix(f, ".list") {
			uri = oneLineMirror(string(b), suite)
		}
		if uri != "" {
			return uri, nil
		}
	}
	return "", fmt.Errorf("no deb source for %s in %s/sources.list(.d)", suite, dir)
}

// oneLineMirror finds "deb [options] URI SUITE COMPONENTS…" for suite.
func oneLineMirror(text, suite string) string {
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 && f[1] == suite {
			return f[0]
		}
	}
	return ""
}

// deb822Mirror finds a stanza with Types: deb and suite among its Suites.
func deb822Mirror(text, suite string) string {
	for _, stanza := range strings.Split(text, "\n\n") {
		fields := map[string][]string{}
		sc := bufio.NewScanner(strings.NewReader(stanza))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if ok && !strings.HasPrefix(line, " ") {
				fields[strings.ToLower(k)] = strings.Fields(v)
			}
		}
		if slices.Contains(fields["types"], "deb") && slices.Contains(fields["suites"], suite) &&
			len(fields["uris"]) > 0 && !slices.Contains(fields["enabled"], "no") {
			return fields["uris"][0]
		}
	}
	return ""
}

func TestAptMirror(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := aptMirror(dir, "bookworm"); err == nil {
		t.Error("no sources: no error")
	}
	write("sources.list.d/cloud.list", "deb https://packages.example.com/apt cloud-sdk-bookworm main\n")
	write("sources.list.d/off.sources", "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n")
	write("sources.list.d/debian.sources", "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"+
		"Types: deb\n# a comment\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n")
	if got, err := aptMirror(dir, "bookworm"); err != nil || got != "http://deb.example/debian" {
		t.Errorf("deb822: %q, %v", got, err)
	}
	write("sources.list", "# deb http://commented.example/debian bookworm main\n"+
		"deb [signed-by=/k.gpg arch=amd64] http://one.example/debian bookworm main # tail\n")
	if got, err := aptMirror(dir, "bookworm"); err != nil || got != "http://one.example/debian" {
		t.Errorf("one-line with options: %q, %v", got, err)
	}
	if got, err := aptMirror(dir, "trixie"); err == nil {
		t.Errorf("trixie: %q, want an error", got)
	}
}

// container is a Debian system booted with systemd-nspawn: systemd runs as
// its PID 1 on a throwaway overlay of a cached root file system, in its own
// network namespace.
type container struct {
	nspawn *proc
	leader int // the container's PID 1 as the host sees it
}

// bootContainer boots root with the host directory share mounted read-only
// at /mnt/share and waits until systemd has finished booting.
func bootContainer(t *testing.T, root, share string) *container {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t, "systemd-nspawn", "nsenter")
	// Without a system bus on the host the container is neither registered
	// with machined nor given a scope of its own (--register=no
	// --keep-unit); --volatile=overlay keeps every change on a tmpfs.
	cmd := exec.Command("systemd-nspawn", "--quiet", "-D", root, "--volatile=overlay",
		"--machine=hwauthd-test-"+strconv.Itoa(os.Getpid()), "--register=no", "--keep-unit",
		"--private-network", "--console=read-only", "--bind-ro="+share+":/mnt/share", "-b")
	cmd.Env = cleanEnv()
	c := &container{nspawn: start(t, "systemd-nspawn", cmd)}
	t.Cleanup(func() { c.shutdown(t) })
	waitFor(t, "the container's init", c.nspawn, func() bool {
		c.leader = initOf(c.nspawn.cmd.Process.Pid)
		return c.leader != 0
	})
	waitFor(t, "systemd's private bus in the container", c.nspawn, func() bool {
		return socketAccepts(c.path("/run/systemd/private"))
	})
	out, err := c.try("systemctl is-system-running --wait")
	switch strings.TrimSpace(out) {
	case "running":
	case "degraded":
		failed, _ := c.try("systemctl --failed --no-legend --plain")
		t.Logf("the container booted degraded; failed units:\n%s", failed)
	default:
		testenv.Missing(t, "systemd-nspawn cannot boot Debian here: %v %s\n%s", err, out, c.nspawn.out.String())
	}
	return c
}

// initOf returns the container's PID 1 as the host sees it: the child of
// systemd-nspawn (pid) that runs systemd, or 0 while there is none yet (the
// first children of systemd-nspawn are short-lived helpers).
func initOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	for _, f := range strings.Fields(string(b)) {
		child, _ := strconv.Atoi(f)
		if procName(child) == "systemd" {
			return child
		}
	}
	return 0
}

// command runs script with /bin/sh as root inside the container: in all
// its namespaces, with a service's bare environment.
func (c *container) command(script string) *exec.Cmd {
	cmd := exec.Command("nsenter", "--target", strconv.Itoa(c.leader), "--all", "--", "/bin/sh", "-ec", script)
	cmd.Env = cleanEnv()
	return cmd
}

// try runs script and returns its combined output.
func (c *container) try(script string) (string, error) {
	out, err := c.command(script).CombinedOutput()
	return string(out), err
}

// sh runs script and fails the test when it fails.
func (c *container) sh(t *testing.T, script string) string {
	t.Helper()
	out, err := c.try(script)
	if err != nil {
		t.Fatalf("in the container: %s: %v\n%s", script, err, out)
	}
	return out
}

// path is a path of the container's file system as the host sees it.
func (c *container) path(p string) string {
	return fmt.Sprintf("/proc/%d/root%s", c.leader, p)
}

// shutdown powers the container off (systemd-nspawn turns SIGTERM into an
// orderly shutdown) and kills it if it has not stopped in time.
func (c *container) shutdown(t *testing.T) {
	select {
	case <-c.nspawn.done:
		return
	default:
	}
	_ = c.nspawn.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.nspawn.done:
	case <-time.After(packagedTimeout):
		t.Errorf("the container did not shut down within %v", packagedTimeout)
		_ = c.nspawn.cmd.Process.Kill()
	}
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
