package daemon

import (
	"net/http"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// getStatus answers at once, whatever state the backends are in. Every
// backend is listed: those turned off in the configuration as disabled.
// The status is the same for every caller, and most requests find it as
// the last one was: its encoding is then sent again instead of encoded
// anew (lastStatus).
func (d *Daemon) getStatus(w http.ResponseWriter, r *http.Request) error {
	st := d.status()
	if last := d.lastStatus.Load(); last != nil && sameStatus(last.status, st) {
		return server.WriteEncodedJSON(w, http.StatusOK, last.body)
	}
	body, err := server.EncodeJSON(st)
	if err != nil {
		return err
	}
	d.lastStatus.Store(&encodedStatus{status: st, body: body})
	return server.WriteEncodedJSON(w, http.StatusOK, body)
}

// status is the daemon's status as it is now.
func (d *Daemon) status() ipc.Status {
	st := ipc.Status{
		Version:       d.version,
		UptimeSeconds: int64(time.Since(d.started).Seconds()),
		Backends:      make(map[string]ipc.BackendStatus, 4),
		Policy: ipc.StatusPolicy{
			SelfService:        d.cfg.Policy.SelfService,
			SelfServiceUnblock: d.cfg.Policy.SelfServiceUnblock,
			Linking:            d.linking(),
		},
	}
	for _, b := range [...]struct {
		name string
		on   bool
	}{{"pcsc", d.cfg.PCSC.Enabled}, {"pkcs11", d.cfg.PKCS11.Enabled}, {"tpm", d.cfg.TPM.Enabled}, {"fido2", d.cfg.FIDO.Enabled}} {
		if !b.on {
			st.Backends[b.name] = ipc.BackendStatus{State: ipc.BackendDisabled}
		}
	}
	for _, b := range d.backends {
		st.Backends[b.Name()] = backendStatus(b)
	}
	return st
}

// encodedStatus is a status answer as sent, and the status it encodes.
// Neither changes once stored.
type encodedStatus struct {
	status ipc.Status
	body   []byte
}

// sameStatus reports whether a and b are equal in every field (what a
// pointer points to, not the pointer), and so encode alike.
// TestSameStatusSeesEveryField changes each field in turn.
func sameStatus(a, b ipc.Status) bool {
	if a.Version != b.Version || a.UptimeSeconds != b.UptimeSeconds || a.Policy != b.Policy ||
		len(a.Backends) != len(b.Backends) {
		return false
	}
	for name, x := range a.Backends {
		y, ok := b.Backends[name]
		if !ok || !sameBackendStatus(x, y) {
			return false
		}
	}
	return true
}

// sameBackendStatus is sameStatus for one backend.
func sameBackendStatus(a, b ipc.BackendStatus) bool {
	return a.State == b.State && a.Detail == b.Detail && a.Manufacturer == b.Manufacturer &&
		samePointee(a.Readers, b.Readers) && samePointee(a.Devices, b.Devices) && samePointee(a.TPM, b.TPM)
}

// samePointee reports whether a and b are both nil or point to equal values.
func samePointee[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func (d *Daemon) getReaders(w http.ResponseWriter, r *http.Request) error {
	return server.WriteJSON(w, http.StatusOK, ipc.ReadersResponse{Readers: d.manager.Readers()})
}
