//go:build !no_pkcs11

package builtins

import "github.com/hwauthd/hwauthd/pkcs11"

func init() { pkcs11Wiring = wirePKCS11 }

// wirePKCS11 adds the PKCS#11 backend. When the PC/SC backend is there, it
// skips the readers whose card that backend serves as PIV and rescans on
// every PC/SC change.
func wirePKCS11(e env, set *Set) {
	cfg := e.cfg.PKCS11
	modules := cfg.Modules
	if len(modules) == 0 {
		modules = pkcs11.DefaultModules()
	}
	pc := pkcs11.Config{
		Modules:        modules,
		HelperPath:     cfg.Helper,
		IncludePIV:     cfg.IncludePIV,
		RequestTimeout: cfg.RequestTimeout.Duration,
	}
	if set.readers != nil {
		pc.SkipReader = set.readers.ServesReader
	}
	p11 := pkcs11.NewBackend(pc, e.log.With("backend", "pkcs11"))
	if set.readers != nil {
		set.readers.OnChange(p11.Rescan)
	}
	set.Backends = append(set.Backends, p11)
}
