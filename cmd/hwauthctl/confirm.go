package main

import (
	"errors"
	"fmt"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// errNotConfirmed is returned when the person did not answer yes.
var errNotConfirmed = errors.New("not confirmed; nothing was changed")

// confirm asks question on the terminal and returns nil only for a yes.
// With yes (--yes) it does not ask. Without a terminal it refuses with a
// usage error rather than guess, since what it guards cannot be undone.
func (a *app) confirm(yes bool, what, question string) error {
	if yes {
		return nil
	}
	if !stdinIsTerminal() {
		return usageError{fmt.Errorf("will not %s without confirmation: standard input is not a terminal; add --yes", what)}
	}
	fmt.Fprintf(a.stderr, "%s [y/N] ", question)
	line, err := readLine(a.stdin, "answer")
	if err != nil {
		return errNotConfirmed
	}
	switch strings.ToLower(strings.TrimSpace(string(line))) {
	case "y", "yes":
		return nil
	}
	return errNotConfirmed
}

// yesFlag adds --yes to cmd.
func yesFlag(cmd *cobra.Command, yes *bool) {
	cmd.Flags().BoolVarP(yes, "yes", "y", false, "do not ask for confirmation")
}

// userFlag adds --user to cmd; the default, resolved by accountOrSelf, is
// the caller's own account.
func userFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVar(name, "user", "", "user account (default: your own)")
}

// currentUser is the caller's account name; replaced in tests.
var currentUser = func() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("find your account name (use --user): %w", err)
	}
	return u.Username, nil
}

// accountOrSelf returns name, or the caller's account when name is empty.
func accountOrSelf(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	return currentUser()
}

// when formats a time for tables, in local time to the minute.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}
