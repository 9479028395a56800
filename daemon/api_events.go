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
	peer, _ := server.PeerFromContext(r.Context())
	visible := d.eventFilter(r, peer)
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
func (d *Daemon) eventFilter(r *http.Request, peer server.Peer) func(ipc.Event) bool {
	if d.access.Admin.CheckAccess(r, peer) == nil || d.access.SignIn.CheckAccess(r, peer) == nil {
		return nil
	}
	name := userName(peer.UID)
	return func(e ipc.Event) bool { return e.User == "" || e.User == name }
}
