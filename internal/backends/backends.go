// Package backends builds the hardware backends the configuration enables and
// connects them to each other. cmd/hwauthd and the end-to-end tests share it,
// so the tests run the daemon as it is shipped.
package backends

import (
	"log/slog"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon/backend"
	"github.com/hwauthd/hwauthd/pcsc/pivbackend"
	"github.com/hwauthd/hwauthd/pkcs11"
)

// Build returns the enabled hardware backends. The PKCS#11 backend skips
// readers whose card is served as PIV and rescans on every PC/SC change.
func Build(cfg config.Config, log *slog.Logger) []backend.Backend {
	var bs []backend.Backend
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
	return bs
}
