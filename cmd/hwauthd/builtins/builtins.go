// Package builtins builds the hardware backends that are compiled into
// hwauthd and that the configuration enables, and connects them to each
// other. cmd/hwauthd and the end-to-end tests share it, so the tests run the
// daemon as it is shipped.
//
// Each backend's wiring is a file of its own under a build tag, so the
// backends that need cgo stay out of a build without it (containerd's
// cmd/containerd/builtins is the model):
//
//	tpm.go     always (go-tpm is pure Go)
//	pcsc.go    cgo && !no_pcsc    (libpcsclite through ebfe/scard)
//	fido.go    cgo && !no_fido    (libfido2 through go-libfido2)
//	pkcs11.go  !no_pkcs11         (modules run in the hwauthd-pkcs11 helper)
//
// so `CGO_ENABLED=0 go build ./cmd/hwauthd` gives a TPM and PKCS#11 daemon
// and `-tags no_pkcs11` a TPM-only one.
package builtins

import (
	"log/slog"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/store"
)

// Set is what Build makes: the backends, and the TPM backend's provisioning
// (nil when virtual cards are off).
type Set struct {
	Backends     []device.Backend
	VirtualCards device.VirtualCards
	// Missing names the backends the configuration enables that this
	// binary was built without.
	Missing []string

	// readers is the PC/SC backend when it is built and enabled, for the
	// PKCS#11 backend to share readers with.
	readers readerOwner
}

// readerOwner is what the PKCS#11 backend needs of the PC/SC backend: which
// readers it serves as PIV cards, and a call on every PC/SC change.
type readerOwner interface {
	ServesReader(reader string) bool
	OnChange(func())
}

// env is what a backend's wiring builds from.
type env struct {
	cfg   config.Config
	log   *slog.Logger
	reg   store.Store
	state store.DeviceState
}

// wiring adds one backend to set when cfg enables it.
type wiring func(e env, set *Set)

// The wiring of each backend built into this binary, set by the file of
// that backend; nil when the backend is not built in. Build calls them in
// this order: the PC/SC backend before the PKCS#11 one, which skips the
// readers it serves.
var tpmWiring, fidoWiring, pcscWiring, pkcs11Wiring wiring

// Build returns the enabled hardware backends that are built in; the
// enabled ones that are not are named in Set.Missing.
func Build(cfg config.Config, log *slog.Logger, reg store.Store, state store.DeviceState) Set {
	var set Set
	e := env{cfg: cfg, log: log, reg: reg, state: state}
	for _, b := range []struct {
		name    string
		enabled bool
		wire    wiring
	}{
		{"tpm", cfg.TPM.Enabled, tpmWiring},
		{"fido2", cfg.FIDO.Enabled, fidoWiring},
		{"pcsc", cfg.PCSC.Enabled, pcscWiring},
		{"pkcs11", cfg.PKCS11.Enabled, pkcs11Wiring},
	} {
		switch {
		case !b.enabled:
		case b.wire == nil:
			set.Missing = append(set.Missing, b.name)
		default:
			b.wire(e, &set)
		}
	}
	return set
}
