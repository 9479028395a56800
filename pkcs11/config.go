package pkcs11

import (
	"os"
	"path/filepath"
	"time"
)

// OpenSCModule is where Debian installs OpenSC's PKCS#11 module.
const OpenSCModule = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"

// HelperName is the file name of the module helper binary
// (cmd/hwauthd-pkcs11).
const HelperName = "hwauthd-pkcs11"

// Defaults of Config's durations.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultRestartMin     = 100 * time.Millisecond
	DefaultRestartMax     = 30 * time.Second
)

// Config configures the PKCS#11 backend. The config file's [pkcs11] table
// maps onto it: modules, helper, include_piv, request_timeout.
type Config struct {
	// Modules are the paths of the PKCS#11 modules to load, in order; a token
	// that two modules reach is shown once, through the first. Empty means
	// the backend is disabled; DefaultModules gives the default.
	Modules []string
	// HelperPath is the helper binary. Empty means HelperName next to the
	// running executable.
	HelperPath string
	// IncludePIV shows tokens whose PC/SC reader holds a card that the native
	// PIV path already serves (SkipReader says which). Default false: such a
	// card appears once, as a PIV card.
	IncludePIV bool
	// SkipReader reports whether the PC/SC reader (as the module names it in
	// its slot description) holds a card that the native PIV path serves. The
	// daemon provides it; nil skips nothing. It is asked again on every scan,
	// so the daemon calls Rescan when the PIV backend attaches or detaches a
	// card.
	SkipReader func(reader string) bool
	// RequestTimeout bounds each request to the helper. A helper that does not
	// answer in time is taken as hung: it is killed and restarted, and the
	// request fails with hwerr.ErrUnavailable. Zero means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// RestartMin and RestartMax bound the backoff between helper restarts.
	// Zero means DefaultRestartMin and DefaultRestartMax.
	RestartMin, RestartMax time.Duration
	// Env is the helper's environment; nil means the daemon's.
	Env []string
}

// DefaultModules returns the modules loaded when the config names none:
// OpenSC's module when it is installed, else none.
func DefaultModules() []string {
	if _, err := os.Stat(OpenSCModule); err == nil {
		return []string{OpenSCModule}
	}
	return nil
}

// withDefaults fills in the zero fields.
func (c Config) withDefaults() Config {
	if c.HelperPath == "" {
		if exe, err := os.Executable(); err == nil {
			c.HelperPath = filepath.Join(filepath.Dir(exe), HelperName)
		}
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.RestartMin <= 0 {
		c.RestartMin = DefaultRestartMin
	}
	if c.RestartMax < c.RestartMin {
		c.RestartMax = max(DefaultRestartMax, c.RestartMin)
	}
	return c
}
