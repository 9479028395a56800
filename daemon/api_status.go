package daemon

import (
	"net/http"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// getStatus answers at once, whatever state the backends are in. Every
// backend is listed: those turned off in the configuration as disabled.
func (d *Daemon) getStatus(w http.ResponseWriter, r *http.Request) error {
	st := ipc.Status{
		Version:       d.version,
		UptimeSeconds: int64(time.Since(d.started).Seconds()),
		Backends:      map[string]ipc.BackendStatus{},
		Policy: ipc.StatusPolicy{
			SelfService:        d.cfg.Policy.SelfService,
			SelfServiceUnblock: d.cfg.Policy.SelfServiceUnblock,
			Linking:            d.linking(),
		},
	}
	for name, on := range map[string]bool{"pcsc": d.cfg.PCSC.Enabled, "pkcs11": d.cfg.PKCS11.Enabled,
		"tpm": d.cfg.TPM.Enabled, "fido2": d.cfg.FIDO.Enabled} {
		if !on {
			st.Backends[name] = ipc.BackendStatus{State: ipc.BackendDisabled}
		}
	}
	for _, b := range d.backends {
		st.Backends[b.Name()] = backendStatus(b)
	}
	return server.WriteJSON(w, http.StatusOK, st)
}

func (d *Daemon) getReaders(w http.ResponseWriter, r *http.Request) error {
	return server.WriteJSON(w, http.StatusOK, ipc.ReadersResponse{Readers: d.manager.Readers()})
}
