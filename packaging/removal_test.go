package packaging_test

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
)

// polkitRule is the packaged rule that lets the hwauthd user lock and end
// login sessions.
const polkitRule = "/usr/share/polkit-1/rules.d/50-hwauthd.rules"

// lockSignal is the match rule of the Lock signal logind sends to a login
// session's screen locker.
const lockSignal = "type='signal',sender='org.freedesktop.login1',interface='org.freedesktop.login1.Session',member='Lock'"

// checkRemovalPolicy sets removal_policy = "lock" and signs alice in with the
// card through a PAM stack with pam_systemd, so that the container's
// systemd-logind has a real login session opened with the card. Without
// the packaged polkit rule, removing the card makes polkitd refuse the
// daemon (the user hwauthd) the lock: hwauthd announces removal-failed.
// With the rule, the card back and a new sign-in, removing the card makes
// logind send the Lock signal to that login session. Then, with
// removal_policy = "logout", logind ends the login session of a new
// sign-in when the card is pulled, and hwauthd's session ends with reason
// logged-out.
func (c *container) checkRemovalPolicy(t *testing.T, card string) {
	t.Helper()
	began := time.Now()
	defer func() {
		t.Logf("removal policy under logind and polkitd checked in %v", time.Since(began).Round(time.Millisecond))
	}()
	c.sh(t, `sed -i 's/^#removal_policy = "none"$/removal_policy = "lock"/' /etc/hwauthd/hwauthd.toml
grep -qx 'removal_policy = "lock"' /etc/hwauthd/hwauthd.toml
# pam_systemd registers the login session before pam_hwauth opens the
# hwauthd session with its XDG_SESSION_ID. chauthtok, last, waits at its
# prompt on the test's open stdin: pamtester, the session's leader, stays.
cat > /etc/pam.d/hwauth-login <<EOF
session  required  pam_systemd.so
@include hwauth
auth     required  pam_deny.so
account  required  pam_permit.so
password required  pam_unix.so
EOF
systemctl restart hwauthd.service`)
	events := c.stream(t, "hwauthctl watch", "hwauthctl --json watch")
	waitFor(t, "the watcher's first line", events, func() bool { return events.out.String() != "" })
	lock := c.stream(t, "dbus-monitor", `dbus-monitor --system "`+lockSignal+`"`)
	waitFor(t, "dbus-monitor to monitor the bus", lock, func() bool {
		return strings.Contains(lock.out.String(), "member=NameLost")
	})

	// Without the rule: the daemon, an unprivileged system user outside
	// any session, gets no consent from polkit.
	c.sh(t, "mv "+polkitRule+" /root/ && systemctl restart polkit.service")
	refused := c.login(t, "login-refused", card).LoginSession
	c.sh(t, "systemctl stop pivcard.service")
	ev := waitEvent(t, events, ipc.EventRemovalFailed, forLogin(refused))
	if ev.User != "alice" || ev.Authenticator != card || !strings.Contains(ev.Reason, "nteractive authentication required") {
		t.Errorf("removal-failed %+v, want alice's with the card %s, refused by polkit", ev, card)
	}
	t.Logf("without the polkit rule logind refused: %s", ev.Reason)
	if strings.Contains(lock.out.String(), "member=Lock") {
		t.Errorf("logind sent Lock although it refused hwauthd:\n%s", lock.out.String())
	}

	// With the packaged rule.
	c.sh(t, "mv /root/"+polkitRule[strings.LastIndex(polkitRule, "/")+1:]+" "+polkitRule+" && systemctl restart polkit.service")
	c.insertCard(t)
	locked := c.login(t, "login-locked", card).LoginSession
	c.sh(t, "systemctl stop pivcard.service")
	if ev = waitEvent(t, events, ipc.EventSessionLocked, forLogin(locked)); ev.User != "alice" || ev.Authenticator != card {
		t.Errorf("session-locked %+v, want alice's with the card %s", ev, card)
	}
	path := "path=/org/freedesktop/login1/session/" + sessionPathPart(locked) + ";"
	waitFor(t, "logind's Lock signal to session "+locked, lock, func() bool {
		for _, l := range strings.Split(lock.out.String(), "\n") {
			if strings.Contains(l, path) && strings.Contains(l, "member=Lock") {
				return true
			}
		}
		return false
	})
	if out := c.sh(t, "journalctl --no-pager -u hwauthd.service"); !strings.Contains(out, "removal policy: login session locked") {
		t.Errorf("hwauthd's journal does not show the lock:\n%s", out)
	}

	// "logout": logind ends the login session (TerminateSession, polkit's
	// org.freedesktop.login1.manage).
	c.sh(t, `sed -i 's/^removal_policy = "lock"$/removal_policy = "logout"/' /etc/hwauthd/hwauthd.toml
grep -qx 'removal_policy = "logout"' /etc/hwauthd/hwauthd.toml
systemctl restart hwauthd.service`)
	events = c.stream(t, "hwauthctl watch", "hwauthctl --json watch")
	waitFor(t, "the watcher's first line", events, func() bool { return events.out.String() != "" })
	c.insertCard(t)
	out := c.login(t, "login-out", card)
	c.sh(t, "systemctl stop pivcard.service")
	waitEvent(t, events, ipc.EventSessionEnded, func(e ipc.Event) bool {
		return e.Session == out.ID && e.Reason == "logged-out"
	})
	waitFor(t, "logind to end login session "+out.LoginSession, events, func() bool {
		return !c.loginSessions(t)[out.LoginSession]
	})
}

// login signs alice in with the card through the PAM service hwauth-login
// in a service of the container named unit, and returns hwauthd's session
// once hwauthd has opened it with the login session that logind registered
// for the sign-in. The login session lasts until the test ends.
func (c *container) login(t *testing.T, unit, card string) ipc.Session {
	t.Helper()
	before := c.loginSessions(t)
	cmd := c.command("exec systemd-run --quiet --pipe --wait --unit=" + unit +
		" pamtester hwauth-login alice authenticate open_session chauthtok")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, unit, cmd)
	t.Cleanup(func() { stdin.Close() })
	if _, err := io.WriteString(stdin, cardPIN+"\n"); err != nil {
		t.Fatal(err)
	}
	var open ipc.Session
	waitFor(t, "alice's login session opened with the card", p, func() bool {
		var list ipc.SessionsResponse
		c.ctl(t, &list, "", "sessions", "--user", "alice")
		for _, s := range list.Sessions {
			if s.Authenticator == card && !s.Pending && s.LoginSession != "" && !before[s.LoginSession] {
				open = s
				return true
			}
		}
		return false
	})
	if st := c.sh(t, "loginctl show-session --property=Name --value "+open.LoginSession); st != "alice\n" {
		t.Errorf("logind's session %s belongs to %q, want alice", open.LoginSession, st)
	}
	return open
}

// loginSessions returns the ids of the login sessions logind knows.
func (c *container) loginSessions(t *testing.T) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, l := range strings.Split(c.sh(t, "loginctl list-sessions --no-legend"), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			ids[f[0]] = true
		}
	}
	return ids
}

// stream runs the command line cmd in the container for the rest of the
// test; its output collects in the returned proc. It dies with nsenter
// (setpriv --pdeathsig): otherwise, orphaned in the container, it would
// hold the output pipe open and keep the test waiting for its end.
func (c *container) stream(t *testing.T, name, cmd string) *proc {
	t.Helper()
	return start(t, name, c.command("exec setpriv --pdeathsig KILL -- "+cmd))
}

// waitEvent waits until the watcher printed an event of type typ that
// match accepts, and returns it.
func waitEvent(t *testing.T, events *proc, typ string, match func(ipc.Event) bool) ipc.Event {
	t.Helper()
	var ev ipc.Event
	waitFor(t, "the event "+typ, events, func() bool {
		for _, l := range strings.Split(events.out.String(), "\n") {
			var e ipc.Event
			if json.Unmarshal([]byte(l), &e) == nil && e.Type == typ && match(e) {
				ev = e
				return true
			}
		}
		return false
	})
	return ev
}

// forLogin matches the events about login session id (their data's
// login_session).
func forLogin(id string) func(ipc.Event) bool {
	return func(e ipc.Event) bool {
		var data struct {
			LoginSession string `json:"login_session"`
		}
		return json.Unmarshal(e.Data, &data) == nil && data.LoginSession == id
	}
}

// sessionPathPart escapes a session id as logind does in object paths
// (sd_bus_path_encode: every byte but [A-Za-z0-9] as _XX).
func sessionPathPart(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' && i > 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "_%02x", ch)
		}
	}
	return b.String()
}
