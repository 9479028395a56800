package signin

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hwauthd/hwauthd/ipc/client"
)

// DefaultInsertTimeout is how long the module waits for a card or key to be
// inserted when none of the user's is present (argument timeout=SECONDS),
// before it asks "Insert your card and press Enter, or press Enter for your
// password". Short, so that a person without their card is not kept waiting.
const DefaultInsertTimeout = 5 * time.Second

// DefaultRequestTimeout bounds each call to the daemon, sign-in included
// (the card signs a challenge, which may take a few seconds on slow cards).
const DefaultRequestTimeout = 30 * time.Second

// Options are the module's arguments from the PAM service file.
type Options struct {
	// Socket is the daemon's socket (socket=PATH); "" means the default.
	Socket string
	// InsertTimeout bounds the wait for a card or key (timeout=SECONDS)
	// before the module asks for the card or the password; 0 asks at once.
	InsertTimeout time.Duration
	// RequestTimeout bounds each call to the daemon.
	RequestTimeout time.Duration
	// Debug logs each step to syslog (debug); never the PIN.
	Debug bool
}

// DefaultOptions returns the options of a service line without arguments.
func DefaultOptions() Options {
	return Options{Socket: client.DefaultSocketPath, InsertTimeout: DefaultInsertTimeout, RequestTimeout: DefaultRequestTimeout}
}

// ParseArgs reads the module arguments of a service line: socket=PATH,
// timeout=SECONDS (0 means ask at once instead of waiting) and debug. An unknown
// argument or a bad value is an error, so a typo in /etc/pam.d is reported
// in the log instead of silently falling back to a default.
func ParseArgs(args []string) (Options, error) {
	o := DefaultOptions()
	for _, a := range args {
		name, value, hasValue := strings.Cut(a, "=")
		switch {
		case name == "debug" && !hasValue:
			o.Debug = true
		case name == "socket" && hasValue && strings.HasPrefix(value, "/"):
			o.Socket = value
		case name == "timeout" && hasValue:
			secs, err := strconv.ParseUint(value, 10, 16)
			if err != nil {
				return o, fmt.Errorf("argument %q: want a number of seconds", a)
			}
			o.InsertTimeout = time.Duration(secs) * time.Second
		case name == "socket":
			return o, fmt.Errorf("argument %q: want socket=/absolute/path", a)
		default:
			return o, fmt.Errorf("unknown argument %q (known: socket=PATH, timeout=SECONDS, debug)", a)
		}
	}
	return o, nil
}
