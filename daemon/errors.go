package daemon

import (
	"context"
	"errors"

	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/ipc"
)

// errShuttingDown refuses what would start after shutdown began (a session,
// an event stream).
var errShuttingDown = ipc.Errorf(ipc.CodeBackendUnavailable, "%s", signin.ErrShuttingDown)

// MapError turns an error from a backend or the daemon into the API's error
// envelope. Hardware error classes are translated by ipc.FromHW (the one table
// of codes); this adds what only the daemon produces, sign-in's typed errors
// among them. It returns nil for an error it does not know, which the server
// answers as internal.
func MapError(err error) *ipc.Error {
	var apiErr *ipc.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &apiErr):
		return apiErr
	}
	// Before the hardware classes: it wraps hwerr.ErrPINBlocked, and its
	// answer carries the advice for the person.
	if e, ok := errors.AsType[*signin.PINBlockedError](err); ok {
		return pinBlocked(e)
	}
	if e := ipc.FromHW(err); e != nil {
		return e
	}
	if e := signInError(err); e != nil {
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ipc.Errorf(ipc.CodeTimeout, "timed out waiting for the authenticator; try again")
	case errors.Is(err, context.Canceled):
		return ipc.Errorf(ipc.CodeCanceled, "the request was cancelled")
	}
	return nil
}

// signInError words the sign-in package's typed errors for the API.
func signInError(err error) *ipc.Error {
	if errors.Is(err, signin.ErrShuttingDown) {
		return errShuttingDown
	}
	if errors.Is(err, signin.ErrNoAuthenticator) {
		return ipc.Errorf(ipc.CodeNoAuthenticator, "%s", signin.ErrNoAuthenticator)
	}
	if e, ok := errors.AsType[*signin.NotRegisteredError](err); ok {
		return ipc.Errorf(ipc.CodeNotRegistered, "%s", e)
	}
	if e, ok := errors.AsType[*signin.PossibleCloneError](err); ok {
		return ipc.Errorf(ipc.CodePossibleClone, "%s", e)
	}
	if e, ok := errors.AsType[*signin.TooManyAttemptsError](err); ok {
		return &ipc.Error{
			Code:    ipc.CodeTooManyAttempts,
			Message: e.Error(),
			Details: map[string]any{"retry_after_seconds": int(e.RetryAfter.Seconds())},
		}
	}
	if e, ok := errors.AsType[*signin.KeyNotFoundError](err); ok {
		if e.Key == "" {
			return ipc.Errorf(ipc.CodeBadRequest, "%s", e)
		}
		return ipc.Errorf(ipc.CodeNotFound, "%s", e)
	}
	if e, ok := errors.AsType[*signin.RegistrationRequiredError](err); ok {
		return &ipc.Error{Code: ipc.CodeRegistrationRequired, Message: e.Message,
			Details: map[string]any{"missing_count": e.MissingCount, "missing_one_of": append([]string{}, e.MissingOneOf...)}}
	}
	if e, ok := errors.AsType[*signin.AlreadyRegisteredError](err); ok {
		return ipc.Errorf(ipc.CodeAlreadyRegistered, "%s", e)
	}
	if e, ok := errors.AsType[*signin.KindNotAllowedError](err); ok {
		return ipc.Errorf(ipc.CodeKindNotAllowed, "%s", e)
	}
	if e, ok := errors.AsType[*signin.CertificateError](err); ok {
		return ipc.Errorf(ipc.CodeCertificateInvalid, "%s", e)
	}
	if e, ok := errors.AsType[*signin.MismatchError](err); ok {
		return ipc.Errorf(ipc.CodeIdentityMismatch, "%s", e)
	}
	return nil
}

// pinBlocked is the pin_blocked answer, whose advice names what the person
// can do (ipc.PINBlockedAdvice).
func pinBlocked(e *signin.PINBlockedError) *ipc.Error {
	how, msg := ipc.PINBlockedAdvice(ipc.Authenticator{ID: e.Authenticator, Kind: string(e.Kind)}, e.SelfServiceUnblock)
	return &ipc.Error{Code: ipc.CodePINBlocked, Message: msg, Details: map[string]any{"unblock": how}}
}

// mapError is MapError with the registry's errors, worded with the
// configured limit.
func (d *Daemon) mapError(err error) *ipc.Error {
	if e := storeError(err, d.cfg.Policy.MaxAuthenticators); e != nil {
		return e
	}
	return MapError(err)
}
