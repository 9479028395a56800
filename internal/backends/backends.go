// Package backends builds the hardware backends the configuration enables and
// connects them to each other. cmd/hwauthd and the end-to-end tests share it,
// so the tests run the daemon as it is shipped.
package backends

import (
	"log/slog"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon/backend"
	"github.com/hwauthd/hwauthd/fido/fidobackend"
	"github.com/hwauthd/hwauthd/pcsc/pivbackend"
	"github.com/hwauthd/hwauthd/pkcs11"
	"github.com/hwauthd/hwauthd/store"
	"github.com/hwauthd/hwauthd/tpm"
	"github.com/hwauthd/hwauthd/tpm/vscbackend"
)

// Set is what Build makes: the backends, and the TPM backend's provisioning
// (nil when virtual cards are off).
type Set struct {
	Backends     []backend.Backend
	VirtualCards backend.VirtualCards
}

// Build returns the enabled hardware backends. The PKCS#11 backend skips
// readers whose card is served as PIV and rescans on every PC/SC change;
// virtual cards keep their records in state, the device-local store.
func Build(cfg config.Config, log *slog.Logger, state store.DeviceState) Set {
	var set Set
	if cfg.TPM.Enabled {
		v := vscbackend.New(tpm.Config{
			Device:    cfg.TPM.Device,
			Simulator: cfg.TPM.Simulator,
			Policy: tpm.Policy{
				MinPINLength:     cfg.TPM.MinPINLength,
				MaxPINLength:     cfg.TPM.MaxPINLength,
				RequiredClasses:  cfg.TPM.PINRequiredClasses,
				ForbiddenClasses: cfg.TPM.PINForbiddenClasses,
				RequirePUK:       cfg.TPM.RequirePUK,
				PINTries:         cfg.TPM.PINTries,
				PUKTries:         cfg.TPM.PUKTries,
				MaxCards:         cfg.TPM.MaxCards,
			},
			OwnerAuthFile: cfg.TPM.OwnerAuthFile,
		}, state, log.With("backend", "tpm"))
		set.Backends = append(set.Backends, v)
		set.VirtualCards = v
	}
	if cfg.FIDO.Enabled {
		set.Backends = append(set.Backends, fidobackend.New(fidobackend.Config{
			DeviceDir:    cfg.FIDO.DeviceDir,
			TouchTimeout: cfg.FIDO.TouchTimeout.Duration,
		}, log.With("backend", "fido2")))
	}
	bs := set.Backends
	var piv *pivbackend.Backend
	if cfg.PCSC.Enabled {
		piv = pivbackend.New(log.With("backend", "pcsc"))
		bs = append(bs, piv)
	}
	if cfg.PKCS11.Enabled {
		modules := cfg.PKCS11.Modules
		if len(modules) == 0 {
			modules = pkcs11.DefaultModules()
		}
		pc := pkcs11.Config{
			Modules:        modules,
			HelperPath:     cfg.PKCS11.Helper,
			IncludePIV:     cfg.PKCS11.IncludePIV,
			RequestTimeout: cfg.PKCS11.RequestTimeout.Duration,
		}
		if piv != nil {
			pc.SkipReader = piv.ServesReader
		}
		p11 := pkcs11.NewBackend(pc, log.With("backend", "pkcs11"))
		if piv != nil {
			piv.OnChange(p11.Rescan)
		}
		bs = append(bs, p11)
	}
	set.Backends = bs
	return set
}
