package pkgdocs

import (
	"bufio"
	"fmt"
	"strings"
)

// Flag is one command-line option of the daemon.
type Flag struct {
	// Name is the option without its leading dash.
	Name string
	// Arg names the option's value ("" for a boolean option).
	Arg string
	// Usage is the option's help text, with its default when it has one.
	Usage string
}

// ParseFlagUsage reads the option list that Go's flag package prints for -h
// (flag.PrintDefaults): each option on a line "  -name arg", its help text on
// the lines after it, indented by a tab.
func ParseFlagUsage(out string) ([]Flag, error) {
	var flags []Flag
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "  -"):
			head, usage, _ := strings.Cut(strings.TrimPrefix(line, "  -"), "\t")
			name, arg, _ := strings.Cut(head, " ")
			flags = append(flags, Flag{Name: name, Arg: strings.TrimSpace(arg), Usage: strings.TrimSpace(usage)})
		case strings.HasPrefix(line, "    \t") && len(flags) > 0:
			f := &flags[len(flags)-1]
			f.Usage = strings.TrimSpace(f.Usage + " " + strings.TrimSpace(line))
		}
	}
	if len(flags) == 0 {
		return nil, fmt.Errorf("no options in the usage text (is it flag.PrintDefaults output?)")
	}
	return flags, sc.Err()
}

// DaemonPage renders hwauthd(8) with the options in flags.
func DaemonPage(flags []Flag) []byte {
	var r roff
	r.header("hwauthd", "8", "System Manager's Manual")
	r.section("name")
	r.WriteString("hwauthd \\- hardware authentication daemon for smart cards, TPM virtual smart cards and FIDO2 keys\n")
	r.section("synopsis")
	r.WriteString("\\fBhwauthd\\fR [\\fIoptions\\fR]\n")
	r.section("description")
	r.prose("**hwauthd** sits between sign-in clients and the hardware that proves who a person is: " +
		"smart cards in PC/SC readers (PIV natively, other cards through their PKCS#11 module), " +
		"TPM-backed virtual smart cards and FIDO2 security keys. It keeps a registry of each user's " +
		"authenticators and serves card detection, PIN verification, signing and sign-in as HTTP with " +
		"JSON bodies over a Unix socket, by default `/run/hwauthd/hwauthd.sock`.")
	r.prose("Under systemd, `hwauthd.socket` listens on the socket and starts `hwauthd.service` " +
		"when the first client connects; the daemon then runs as the unprivileged user `hwauthd`. " +
		"Started by hand, it creates the socket itself (refusing one that a running daemon owns). " +
		"Either way it answers its first request, and reports READY=1 to systemd, only once every " +
		"enabled backend has looked for its devices once (at most 5 seconds), so that the request " +
		"that started it already sees the cards and keys that are present.")
	r.prose("Every local user may connect. What a caller may do is decided per request from its peer " +
		"credentials: a user uses the authenticators registered to them and sees only their own " +
		"registrations, sessions and events; root and members of the groups named by `admin_group` " +
		"and `signin_group` in hwauthd.toml(5) get more. PINs and PUKs are never " +
		"logged, stored or retried by the daemon.")
	r.section("options")
	for _, f := range flags {
		tag := "-" + f.Name
		if f.Arg != "" {
			tag += " " + f.Arg
		}
		r.tagged(tag, f.Usage)
	}
	r.section("environment")
	r.tagged("HWAUTHD_SOCKET", "the API socket path, over `daemon.socket` and under `-socket`.")
	r.tagged("PCSCLITE_CSOCK_NAME", "the socket of the pcscd to use, read by libpcsclite.")
	r.tagged("LISTEN_FDS, LISTEN_PID", "set by systemd for socket activation.")
	r.tagged("NOTIFY_SOCKET", "set by systemd; hwauthd reports readiness and shutdown on it.")
	r.section("files")
	r.tagged("/etc/hwauthd/hwauthd.toml", "the configuration, see hwauthd.toml(5).")
	r.tagged("/run/hwauthd/hwauthd.sock", "the API socket.")
	r.tagged("/var/lib/hwauthd", "the registry and virtual-card metadata.")
	r.tagged("/lib/systemd/system/hwauthd.socket, hwauthd.service", "the systemd units.")
	r.section("signals")
	r.tagged("SIGTERM, SIGINT", "stop: end every session and exit.")
	r.section("exit status")
	r.tagged("0", "stopped by a signal, cleanly.")
	r.tagged("1", "could not start (configuration, socket, state) or failed while serving; the reason is on standard error.")
	r.section("see also")
	r.WriteString("\\fBhwauthctl\\fR(1), \\fBhwauthd.toml\\fR(5), \\fBhwauthd-pkcs11\\fR(8), \\fBpam_hwauth\\fR(8), \\fBpcscd\\fR(8), \\fBsystemd.socket\\fR(5)\n")
	return r.Bytes()
}

// HelperPage renders hwauthd-pkcs11(8), the page of the PKCS#11 helper
// that hwauthd starts (it has no options of its own).
func HelperPage() []byte {
	var r roff
	r.header("hwauthd-pkcs11", "8", "System Manager's Manual")
	r.section("name")
	r.WriteString("hwauthd-pkcs11 \\- hwauthd's helper process for PKCS#11 modules\n")
	r.section("synopsis")
	r.WriteString("\\fBhwauthd-pkcs11\\fR\n")
	r.section("description")
	r.prose("**hwauthd-pkcs11** loads the PKCS#11 modules that hwauthd(8) uses for smart cards it does not " +
		"serve as PIV (the modules of `[pkcs11] modules` in hwauthd.toml(5), OpenSC's by default) and answers " +
		"the daemon's requests to list tokens, verify PINs and sign. The daemon starts it with one end of a " +
		"private socket pair on file descriptor 3 and restarts it when it dies; a module that crashes or " +
		"hangs so takes down only this process, never the daemon.")
	r.prose("It is not meant to be run by hand: started without the daemon's socket it says so and exits " +
		"with status 2. It runs as the daemon's user, refuses core dumps and tracing (PINs pass through it), " +
		"and exits when the daemon closes the socket.")
	r.section("exit status")
	r.tagged("0", "the daemon closed the socket.")
	r.tagged("1", "the exchange with the daemon failed.")
	r.tagged("2", "no socket on file descriptor 3: not started by hwauthd.")
	r.section("files")
	r.tagged("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so", "OpenSC's module, loaded when the configuration names none.")
	r.section("see also")
	r.WriteString("\\fBhwauthd\\fR(8), \\fBhwauthd.toml\\fR(5), \\fBpkcs11-tool\\fR(1)\n")
	return r.Bytes()
}
