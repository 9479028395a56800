package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/hwauthd/hwauthd/ipc/client"
)

// app is the state shared by the commands of one invocation.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	socket         string
	json           bool
	pinStdin       bool
	secrets        *secretReader
}

// client returns a client for the chosen socket.
func (a *app) client() *client.Client { return client.New(a.socket) }

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// output prints v as JSON with --json, else calls human.
func (a *app) output(v any, human func() error) error {
	if a.json {
		return a.printJSON(v)
	}
	return human()
}

const exitCodesHelp = `Exit status:
  0  success
  1  general error
  2  usage error (bad command, flag or argument)
  3  PIN (or PUK) incorrect
  4  PIN blocked
  5  not found, or no authenticator present
  6  not allowed (unauthorized)
  7  hwauthd cannot be reached`

// newRootCmd builds the command tree; tests and documentation generators
// walk it.
func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "hwauthctl",
		Short:         "Control hwauthd: smart cards, virtual smart cards and security keys",
		Long:          "hwauthctl talks to the hwauthd daemon over its Unix socket.\n\nPINs and PUKs are asked on the terminal without echo, or read one per line\nfrom standard input with --pin-stdin; they are never accepted as arguments.\n\nIds of authenticators, registrations, sessions and virtual smart cards may\nbe shortened to any unique prefix, with or without the backend's prefix\n(\"show 3f2a\" for piv-3f2a...).\n\n" + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.secrets = newSecretReader(a.stdin, a.stderr, a.pinStdin)
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	// The package installs the completion scripts (see hwauthctl(1), FILES):
	// cobra's command that prints them stays, out of the help and the page.
	root.CompletionOptions.HiddenDefaultCmd = true
	f := root.PersistentFlags()
	f.StringVar(&a.socket, "socket", client.DefaultSocket(), "path of hwauthd's socket (env "+client.SocketEnv+")")
	f.BoolVar(&a.json, "json", false, "print the API's JSON instead of text")
	f.BoolVar(&a.pinStdin, "pin-stdin", false, "read PINs and PUKs from standard input, one line each, in the order asked")
	root.AddCommand(statusCmd(a), readersCmd(a), listCmd(a), showCmd(a), watchCmd(a), pinCmd(a), signCmd(a),
		registerCmd(a), registrationsCmd(a), unregisterCmd(a), defaultCmd(a),
		signinCmd(a), signoutCmd(a), sessionsCmd(a), forgetCmd(a),
		vscCmd(a), linkCmd(a), unlinkCmd(a), linksCmd(a), fidoCmd(a))
	takeIDs(a, root)
	return root
}

// run executes one invocation and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	reportError(a, err)
	return exitCode(err)
}

// exactArgs is cobra.ExactArgs with usage errors.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d; see %s --help", cmd.CommandPath(), n, len(args), cmd.CommandPath())}
		}
		return nil
	}
}

// usageError marks a mistake on the command line (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// stdinIsTerminal is replaced in tests.
var stdinIsTerminal = func() bool { return isTerminal(os.Stdin) }

// jsonLine writes v as one compact JSON line.
func jsonLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
