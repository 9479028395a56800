package daemon

import (
	"context"
	"errors"

	"github.com/hwauthd/hwauthd/ipc"
)

// MapError turns an error from a backend or the daemon into the API's error
// envelope. Hardware error classes are translated by ipc.FromHW (the one table
// of codes); this adds what only the daemon produces. It returns nil for an
// error it does not know, which the server answers as internal.
func MapError(err error) *ipc.Error {
	var apiErr *ipc.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &apiErr):
		return apiErr
	}
	if e := ipc.FromHW(err); e != nil {
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

// mapError is MapError with the registry's errors, worded with the
// configured limit.
func (d *Daemon) mapError(err error) *ipc.Error {
	if e := storeError(err, d.cfg.Policy.MaxAuthenticators); e != nil {
		return e
	}
	return MapError(err)
}
