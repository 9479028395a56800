package daemon

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/hwauthd/hwauthd/daemon/events"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// getEvents streams events as one JSON object per line. Without ?since it
// starts with a snapshot of what is present, ended by snapshot-done; with
// ?since=SEQ it resumes after that sequence number. A watcher that falls
// behind gets a dropped event and the stream ends.
func (d *Daemon) getEvents(w http.ResponseWriter, r *http.Request) error {
	var since uint64
	if s := r.URL.Query().Get("since"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return ipc.Errorf(ipc.CodeBadRequest, "since must be a sequence number, got %q", s)
		}
		since = v
	}
	visible := d.eventFilter(d.callerOf(r))
	if !d.streams.enter() {
		return errShuttingDown
	}
	defer d.streams.leave()
	sub, err := d.manager.Subscribe(since, visible)
	if errors.Is(err, events.ErrClosed) {
		return errShuttingDown
	}
	if err != nil {
		return err
	}
	defer sub.Close()
	return server.StreamJSONLines(w, r, func(ctx context.Context) (any, error) {
		return sub.Next(ctx)
	})
}

// eventFilter hides events about other users (registrations, sessions) from
// a caller who is not an admin or a sign-in service.
func (d *Daemon) eventFilter(c caller) func(ipc.Event) bool {
	if c.seesEveryUser() {
		return nil
	}
	return func(e ipc.Event) bool { return e.User == "" || (c.name != "" && e.User == c.name) }
}
