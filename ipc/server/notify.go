package server

import (
	"fmt"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
)

// sdNotify sends state to systemd; it does nothing when NOTIFY_SOCKET is
// unset (the daemon was not started by systemd with Type=notify).
func sdNotify(state string) error {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("notify systemd %q: %w", state, err)
	}
	return nil
}

// NotifyReady tells systemd the daemon is ready (READY=1): call it once the
// socket listens.
func NotifyReady() error { return sdNotify(sddaemon.SdNotifyReady) }

// NotifyStopping tells systemd the daemon is shutting down (STOPPING=1).
func NotifyStopping() error { return sdNotify(sddaemon.SdNotifyStopping) }

// NotifyWatchdog pings systemd's watchdog (WATCHDOG=1).
func NotifyWatchdog() error { return sdNotify(sddaemon.SdNotifyWatchdog) }

// NotifyStatus sets the status line systemctl shows (STATUS=...).
func NotifyStatus(status string) error { return sdNotify("STATUS=" + status) }

// WatchdogInterval returns how often to call NotifyWatchdog (half of
// WATCHDOG_USEC), or 0 when the watchdog is off.
func WatchdogInterval() (time.Duration, error) {
	d, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0, fmt.Errorf("systemd watchdog: %w", err)
	}
	return d / 2, nil
}
