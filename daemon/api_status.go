package daemon

import (
	"net/http"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// getStatus answers at once, whatever state the backends are in.
func (d *Daemon) getStatus(w http.ResponseWriter, r *http.Request) error {
	st := ipc.Status{
		Version:       d.version,
		UptimeSeconds: int64(time.Since(d.started).Seconds()),
		Backends:      map[string]ipc.BackendStatus{},
		Policy: ipc.StatusPolicy{
			SelfService:        d.cfg.Policy.SelfService,
			SelfServiceUnblock: d.cfg.Policy.SelfServiceUnblock,
		},
	}
	for _, b := range d.backends {
		st.Backends[b.Name()] = backendStatus(b)
	}
	return server.WriteJSON(w, http.StatusOK, st)
}

func (d *Daemon) getReaders(w http.ResponseWriter, r *http.Request) error {
	return server.WriteJSON(w, http.StatusOK, ipc.ReadersResponse{Readers: d.manager.Readers()})
}
