package signin

import (
	"context"
	"errors"
	"fmt"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/client"
)

// Result is a PAM return value named without cgo; package pam/relay turns
// it into the PAM_* constant of <security/_pam_types.h>.
type Result int

// The results the module returns.
const (
	// Success is PAM_SUCCESS: signed in.
	Success Result = iota
	// AuthErr is PAM_AUTH_ERR: wrong PIN, blocked PIN, card not registered to
	// the user, and every refusal of hwauthd. pam_pkcs11 and pam_u2f answer a
	// blocked token the same way.
	AuthErr
	// AuthInfoUnavail is PAM_AUTHINFO_UNAVAIL: no card or key came, hwauthd
	// is unreachable or its backend is down, or the user has nothing
	// registered; a stack with "sufficient" moves on to the next method.
	AuthInfoUnavail
	// UserUnknown is PAM_USER_UNKNOWN: no such account.
	UserUnknown
	// ServiceErr is PAM_SERVICE_ERR: the module is misconfigured.
	ServiceErr
	// ConvErr is PAM_CONV_ERR: the conversation failed.
	ConvErr
	// Ignore is PAM_IGNORE: the module has nothing to say.
	Ignore
	// SessionErr is PAM_SESSION_ERR: close_session could not sign out.
	SessionErr
)

var resultNames = [...]string{"PAM_SUCCESS", "PAM_AUTH_ERR", "PAM_AUTHINFO_UNAVAIL", "PAM_USER_UNKNOWN", "PAM_SERVICE_ERR", "PAM_CONV_ERR", "PAM_IGNORE", "PAM_SESSION_ERR"}

// String returns the PAM_* name of the result.
func (r Result) String() string {
	if r >= 0 && int(r) < len(resultNames) {
		return resultNames[r]
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// The messages shown to the person for the outcomes of SPEC.md R2 and R10.
const (
	msgUnreachable = "The smart card service (hwauthd) is not running, so sign in another way or ask your administrator."
	msgNoAnswer    = "The smart card service (hwauthd) did not answer in time, so try again."
)

// wrongPIN is the message after a wrong PIN: the tries left are never
// hidden (SPEC.md R2).
func wrongPIN(retries hwerr.Tries) string {
	switch n, ok := retries.Left(); {
	case !ok:
		return "Wrong PIN."
	case n == 1:
		return "Wrong PIN, 1 try left."
	default:
		return fmt.Sprintf("Wrong PIN, %d tries left.", n)
	}
}

// notRegistered is the message for a card that is not the user's.
func notRegistered(user string) string {
	return fmt.Sprintf("This card is not registered to %s.", user)
}

// failure shows the person what went wrong with err and returns the
// matching outcome.
func (m *Module) failure(err error, user string) Outcome {
	res, reason, msg := classify(err, user)
	m.say(m.Conv.Error, msg)
	return Outcome{Result: res, Reason: reason}
}

// classify maps an error of the client to a PAM result, a reason for the log
// and a message for the person.
func classify(err error, user string) (Result, string, string) {
	var unreachable *client.UnreachableError
	var apiErr *ipc.Error
	switch {
	case errors.As(err, &unreachable):
		return AuthInfoUnavail, "hwauthd unreachable", msgUnreachable
	case errors.Is(err, context.DeadlineExceeded):
		return AuthInfoUnavail, "hwauthd timed out", msgNoAnswer
	case !errors.As(err, &apiErr):
		return AuthInfoUnavail, "hwauthd: " + err.Error(), msgUnreachable
	}
	reason := string(apiErr.Code)
	switch apiErr.Code {
	case ipc.CodePINIncorrect:
		return AuthErr, reason, wrongPIN(apiErr.RetriesLeft)
	case ipc.CodePINBlocked:
		// The daemon's message names what the person can do (their PUK or
		// their administrator), by policy and kind.
		return AuthErr, reason, apiErr.Error()
	case ipc.CodeNotRegistered, ipc.CodeIdentityMismatch:
		return AuthErr, reason, notRegistered(user)
	case ipc.CodeBackendUnavailable, ipc.CodeUnauthorized, ipc.CodeRegistrationRequired:
		// The card cannot be used now: a "sufficient" line moves on to the
		// password.
		return AuthInfoUnavail, reason, apiErr.Error()
	default:
		// The rest: the API's message is written for people (SPEC.md R10).
		return AuthErr, reason, apiErr.Error()
	}
}
