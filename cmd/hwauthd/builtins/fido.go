//go:build cgo && !no_fido

package builtins

import "github.com/hwauthd/hwauthd/fido/fidobackend"

func init() { fidoWiring = wireFIDO }

// wireFIDO adds the FIDO2 security key backend.
func wireFIDO(e env, set *Set) {
	set.Backends = append(set.Backends, fidobackend.New(fidobackend.Config{
		DeviceDir:    e.cfg.FIDO.DeviceDir,
		TouchTimeout: e.cfg.FIDO.TouchTimeout.Duration,
	}, e.log.With("backend", "fido2")))
}
