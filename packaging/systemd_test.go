package packaging_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/ipc"
)

// maxExposure is the highest `systemd-analyze security` score the unit may
// have (0 is best, 10 worst; systemd calls up to 2.0 "OK").
const maxExposure = 2.0

// vpcdReader is the first reader of the vpcd configuration that
// vsmartcard-vpcd installs (/etc/reader.conf.d/vpcd, port 0x8C7B).
const vpcdReader = "Virtual PCD 00 00"

// TestUnderSystemd boots Debian 12 with systemd as PID 1 in systemd-nspawn
// and runs the package there as a user's machine does: dpkg installs it,
// the socket starts the service on the first request, which already sees the
// card present in pcscd's reader; the service is Type=notify with a working
// watchdog and a hardened unit; the packaged PAM module signs a user in;
// then the service stops, the package is reinstalled over itself (an
// upgrade) and purged. See docs/system-test.md.
func TestUnderSystemd(t *testing.T) {
	_, deb := buildDeb(t)
	root := debianRootfs(t, deb)
	share := t.TempDir()
	copyFile(t, deb, filepath.Join(share, "hwauthd.deb"))
	copyFile(t, buildPivcard(t), filepath.Join(share, "pivcard"))
	if err := os.Chmod(filepath.Join(share, "pivcard"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := bootContainer(t, root, share)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.try("journalctl --no-pager -n 200 -u hwauthd.service -u hwauthd.socket -u pcscd.service -u pivcard.service")
			t.Logf("the container's journal:\n%s", out)
		}
	})

	c.sh(t, "dpkg -i /mnt/share/hwauthd.deb")
	if st := c.unit(t, "hwauthd.socket"); st["ActiveState"] != "active" || st["UnitFileState"] != "enabled" {
		t.Errorf("after install hwauthd.socket is %s/%s, want active and enabled", st["ActiveState"], st["UnitFileState"])
	}
	if st := c.unit(t, "hwauthd.service"); st["ActiveState"] != "inactive" {
		t.Errorf("after install hwauthd.service is %s, want inactive until the first request", st["ActiveState"])
	}

	c.insertCard(t)
	if st := c.unit(t, "hwauthd.service"); st["ActiveState"] != "inactive" {
		t.Fatalf("hwauthd.service is %s before the first request", st["ActiveState"])
	}
	id := c.checkFirstAnswer(t)
	c.checkNotify(t)
	c.checkSecurity(t)
	c.checkPAM(t, id)
	c.checkWatchdog(t)
	c.checkStop(t)
	c.checkUpgrade(t)
	c.checkRemovalPolicy(t, id)
	c.checkPurge(t)
}

// unit returns the properties of a unit as `systemctl show` gives them.
func (c *container) unit(t *testing.T, name string) map[string]string {
	t.Helper()
	props := map[string]string{}
	for _, l := range strings.Split(c.sh(t, "systemctl show "+name), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			props[k] = v
		}
	}
	return props
}

// ctl runs the packaged hwauthctl as root with --json and decodes its
// output into v.
func (c *container) ctl(t *testing.T, v any, stdin string, args ...string) {
	t.Helper()
	cmd := c.command(`exec hwauthctl --json "$@"`)
	cmd.Args = append(cmd.Args, "sh")
	cmd.Args = append(cmd.Args, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hwauthctl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderrOf(err))
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			t.Fatalf("hwauthctl --json %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// insertCard runs the emulated PIV card as a service of the container and
// waits until pcscd shows it in the vpcd reader. pcscd starts through its
// own socket when opensc-tool first asks. The card keeps its state in a
// file: inserted again after `systemctl stop pivcard`, it is the same card.
func (c *container) insertCard(t *testing.T) {
	t.Helper()
	c.sh(t, "systemd-run --unit=pivcard /mnt/share/pivcard --vpcd 127.0.0.1:35963 --state /var/lib/pivcard.state")
	waitFor(t, "the card in "+vpcdReader, c.nspawn, func() bool {
		out, _ := c.try("opensc-tool -l")
		for _, l := range strings.Split(out, "\n") {
			if strings.HasSuffix(l, vpcdReader) && strings.Contains(l, " Yes ") {
				return true
			}
		}
		return false
	})
}

// checkFirstAnswer sends the request that starts the daemon and checks that
// it already lists the card, then that the status shows every backend past
// its start. It returns the card's id.
func (c *container) checkFirstAnswer(t *testing.T) string {
	t.Helper()
	var list ipc.AuthenticatorsResponse
	c.ctl(t, &list, "", "list")
	if st := c.unit(t, "hwauthd.service"); st["ActiveState"] != "active" || st["TriggeredBy"] != "hwauthd.socket" {
		t.Errorf("after the first request hwauthd.service is %s, triggered by %q; want active through hwauthd.socket",
			st["ActiveState"], st["TriggeredBy"])
	}
	var card string
	for _, a := range list.Authenticators {
		if a.Kind == ipc.KindSmartcard && a.Reader == vpcdReader {
			card = a.ID
		}
	}
	if card == "" {
		t.Fatalf("the request that started hwauthd does not list the card in %s: %+v", vpcdReader, list)
	}
	c.checkSettled(t)
	return card
}

// checkSettled checks that no backend in the status is still starting.
func (c *container) checkSettled(t *testing.T) {
	t.Helper()
	var st ipc.Status
	c.ctl(t, &st, "", "status")
	for name, b := range st.Backends {
		if b.State == ipc.BackendDown && strings.Contains(b.Detail, "starting") {
			t.Errorf("backend %s is still starting: %+v", name, b)
		}
	}
	if pcsc := st.Backends["pcsc"]; pcsc.State != ipc.BackendUp || pcsc.Readers == nil || *pcsc.Readers < 1 {
		t.Errorf("pcsc backend %+v, want up with the vpcd readers", pcsc)
	}
}

// checkNotify checks that the unit is Type=notify and that a start returns
// (READY=1) only when the backends have enumerated: the card is listed at
// once.
func (c *container) checkNotify(t *testing.T) {
	t.Helper()
	st := c.unit(t, "hwauthd.service")
	if st["Type"] != "notify" || st["NotifyAccess"] != "main" {
		t.Errorf("hwauthd.service Type=%s NotifyAccess=%s, want notify, main", st["Type"], st["NotifyAccess"])
	}
	c.sh(t, "systemctl restart hwauthd.service")
	var list ipc.AuthenticatorsResponse
	c.ctl(t, &list, "", "list")
	if len(list.Authenticators) == 0 {
		t.Errorf("right after systemctl restart returned, no authenticator is listed")
	}
	c.checkSettled(t)
}

var exposureRE = regexp.MustCompile(`Overall exposure level for hwauthd\.service: ([0-9.]+)`)

// checkSecurity scores the running unit with systemd-analyze security.
func (c *container) checkSecurity(t *testing.T) {
	t.Helper()
	out := c.sh(t, "systemd-analyze security --no-pager hwauthd.service")
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in systemd-analyze security:\n%s", out)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil || score > maxExposure {
		t.Errorf("systemd-analyze security: exposure %s, want at most %.1f\n%s", m[1], maxExposure, out)
	}
	t.Logf("systemd-analyze security hwauthd.service: %s", m[1])
}

// checkPAM registers the card for a new user and signs that user in with
// the packaged PAM module, configured as its example file shows, through
// pamtester: the right PIN opens and closes a session, a wrong one fails.
func (c *container) checkPAM(t *testing.T, card string) {
	t.Helper()
	c.sh(t, "useradd --create-home alice")
	c.ctl(t, nil, cardPIN+"\n", "--pin-stdin", "register", card, "--user", "alice")
	c.sh(t, `cp /usr/share/doc/hwauthd/examples/pam.d/hwauth /etc/pam.d/hwauth
cat > /etc/pam.d/hwauth-test <<EOF
@include hwauth
auth     required  pam_deny.so
account  required  pam_permit.so
session  required  pam_permit.so
EOF`)
	out, err := c.try("echo " + cardPIN + " | pamtester hwauth-test alice authenticate open_session close_session")
	if err != nil || !strings.Contains(out, "successfully authenticated") {
		t.Errorf("PAM sign-in of alice with the right PIN: %v\n%s", err, out)
	}
	if out, err := c.try("echo 999999 | pamtester hwauth-test alice authenticate"); err == nil {
		t.Errorf("PAM sign-in with a wrong PIN succeeded:\n%s", out)
	}
	var regs ipc.RegistrationsResponse
	c.ctl(t, &regs, "", "registrations", "--user", "alice")
	if len(regs.Registrations) != 1 || regs.Registrations[0].Authenticator != card {
		t.Errorf("alice's registrations %+v, want the card %s", regs, card)
	}
}

// checkWatchdog shortens the watchdog with a drop-in, sees the daemon ping
// it, then freezes the daemon and sees systemd kill and restart it.
func (c *container) checkWatchdog(t *testing.T) {
	t.Helper()
	c.sh(t, `mkdir -p /etc/systemd/system/hwauthd.service.d
printf '[Service]\nWatchdogSec=2s\n' > /etc/systemd/system/hwauthd.service.d/watchdog.conf
systemctl daemon-reload
systemctl restart hwauthd.service`)
	first := c.unit(t, "hwauthd.service")
	if first["WatchdogUSec"] != "2s" {
		t.Fatalf("WatchdogUSec=%s after the drop-in", first["WatchdogUSec"])
	}
	// Two pings: the last ping's time moves twice.
	seen := map[string]bool{first["WatchdogTimestampMonotonic"]: true}
	waitFor(t, "two watchdog pings", c.nspawn, func() bool {
		seen[c.unit(t, "hwauthd.service")["WatchdogTimestampMonotonic"]] = true
		return len(seen) >= 3
	})
	c.sh(t, "systemctl kill --signal=SIGSTOP hwauthd.service")
	waitFor(t, "the watchdog to restart the frozen daemon", c.nspawn, func() bool {
		st := c.unit(t, "hwauthd.service")
		return st["NRestarts"] == "1" && st["ActiveState"] == "active" && st["MainPID"] != first["MainPID"]
	})
	if out := c.sh(t, "journalctl --no-pager -u hwauthd.service"); !strings.Contains(out, "Watchdog timeout") {
		t.Errorf("the journal does not show the watchdog timeout:\n%s", out)
	}
	c.sh(t, `rm -r /etc/systemd/system/hwauthd.service.d
systemctl daemon-reload
systemctl restart hwauthd.service`)
}

// checkStop stops the service: it ends cleanly and entirely; the socket
// stays and starts it again on the next request.
func (c *container) checkStop(t *testing.T) {
	t.Helper()
	c.sh(t, "systemctl stop hwauthd.service")
	st := c.unit(t, "hwauthd.service")
	if st["ActiveState"] != "inactive" || st["Result"] != "success" {
		t.Errorf("after stop: %s, result %s; want inactive, success", st["ActiveState"], st["Result"])
	}
	if p := c.processes(t, "hwauthd", "hwauthd-pkcs11"); p != "" {
		t.Errorf("processes left after stop: %s", p)
	}
	c.checkSettled(t) // a new request starts it again through the socket
}

// processes lists the container's processes with one of the names.
func (c *container) processes(t *testing.T, names ...string) string {
	t.Helper()
	return strings.TrimSpace(c.sh(t, fmt.Sprintf(`for p in /proc/[0-9]*; do
  n=$(cat $p/comm 2>/dev/null) || continue
  case " %s " in *" $n "*) echo "${p#/proc/} $n";; esac
done`, strings.Join(names, " "))))
}

// checkUpgrade reinstalls the package over itself while the daemon runs:
// the local configuration and the registry stay, and the daemon restarts on
// the new binary.
func (c *container) checkUpgrade(t *testing.T) {
	t.Helper()
	before := c.unit(t, "hwauthd.service")["MainPID"]
	c.sh(t, "echo '# a local change' >> /etc/hwauthd/hwauthd.toml && dpkg -i /mnt/share/hwauthd.deb")
	if conf := c.sh(t, "cat /etc/hwauthd/hwauthd.toml"); !strings.Contains(conf, "# a local change") {
		t.Error("the upgrade replaced the changed configuration")
	}
	st := c.unit(t, "hwauthd.service")
	if st["ActiveState"] != "active" || st["MainPID"] == before {
		t.Errorf("after the upgrade hwauthd.service is %s with MainPID %s (before %s); want restarted",
			st["ActiveState"], st["MainPID"], before)
	}
	var regs ipc.RegistrationsResponse
	c.ctl(t, &regs, "", "registrations", "--user", "alice")
	if len(regs.Registrations) != 1 {
		t.Errorf("after the upgrade alice has %d registrations, want 1", len(regs.Registrations))
	}
}

// checkPurge purges the package: units, sockets, processes, configuration
// and state are gone.
func (c *container) checkPurge(t *testing.T) {
	t.Helper()
	c.sh(t, "dpkg -P hwauthd")
	if units := strings.TrimSpace(c.sh(t, "systemctl list-unit-files --no-legend 'hwauthd*' || true")); units != "" {
		t.Errorf("unit files left after purge:\n%s", units)
	}
	for _, u := range []string{"hwauthd.socket", "hwauthd.service"} {
		if st := c.unit(t, u); st["ActiveState"] != "inactive" {
			t.Errorf("after purge %s is %s", u, st["ActiveState"])
		}
	}
	if p := c.processes(t, "hwauthd", "hwauthd-pkcs11"); p != "" {
		t.Errorf("processes left after purge: %s", p)
	}
	for _, p := range []string{"/etc/hwauthd", "/var/lib/hwauthd", "/run/hwauthd", "/usr/sbin/hwauthd"} {
		if _, err := os.Lstat(c.path(p)); err == nil {
			t.Errorf("%s left after purge", p)
		}
	}
}

// stderrOf returns the standard error an exec.ExitError captured.
func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
