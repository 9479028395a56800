package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/client"
)

// Exit statuses, documented in exitCodesHelp and docs/api.md.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitPINWrong    = 3
	exitPINBlocked  = 4
	exitNotFound    = 5
	exitNotAllowed  = 6
	exitUnreachable = 7
)

// exitCode maps an error to the exit status.
func exitCode(err error) int {
	var u *client.UnreachableError
	var ue usageError
	var e *ipc.Error
	switch {
	case errors.As(err, &ue) || isCobraUsage(err):
		return exitUsage
	case errors.As(err, &u):
		return exitUnreachable
	case errors.As(err, &e):
		return apiExitCode(e.Code)
	}
	return exitError
}

// apiExitCode maps an API error code to the exit status.
func apiExitCode(c ipc.Code) int {
	switch c {
	case ipc.CodePINIncorrect:
		return exitPINWrong
	case ipc.CodePINBlocked:
		return exitPINBlocked
	case ipc.CodeNotFound, ipc.CodeNoAuthenticator:
		return exitNotFound
	case ipc.CodeUnauthorized:
		return exitNotAllowed
	}
	return exitError
}

// isCobraUsage recognises cobra's own command-line errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "required flag") || strings.Contains(msg, "flags in the group")
}

// reportError writes the error for people (message and next step), or the
// API envelope with --json.
func reportError(a *app, err error) {
	var e *ipc.Error
	if a.json && errors.As(err, &e) {
		b, _ := json.Marshal(e)
		fmt.Fprintln(a.stderr, string(b))
		return
	}
	fmt.Fprintln(a.stderr, "hwauthctl: "+describe(err))
	if next := nextStep(err); next != "" {
		fmt.Fprintln(a.stderr, "next: "+next)
	}
}

// describe says what went wrong, with the tries left when the API told them.
func describe(err error) string {
	var e *ipc.Error
	if !errors.As(err, &e) {
		return err.Error()
	}
	msg := e.Error()
	if n, ok := e.RetriesLeft.Left(); ok && !strings.Contains(msg, "left") {
		msg += fmt.Sprintf(" (%s)", triesLeft(n))
	}
	return msg
}

// nextStep says what to do about err.
func nextStep(err error) string {
	var e *ipc.Error
	var ue usageError
	switch {
	case errors.As(err, &e):
		return e.Code.Hint()
	case errors.As(err, &ue) || isCobraUsage(err):
		if strings.Contains(err.Error(), "--help") {
			return "" // the message names the help already
		}
		return "see hwauthctl --help"
	}
	return ""
}

// triesLeft words a retry counter.
func triesLeft(n int) string {
	if n == 1 {
		return "1 try left"
	}
	return fmt.Sprintf("%d tries left", n)
}
