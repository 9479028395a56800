//go:build cgo && !no_pcsc

package builtins

import "github.com/hwauthd/hwauthd/pcsc/pivbackend"

func init() { pcscWiring = wirePCSC }

// wirePCSC adds the PC/SC backend, which serves PIV cards.
func wirePCSC(e env, set *Set) {
	piv := pivbackend.New(e.log.With("backend", "pcsc"))
	set.Backends = append(set.Backends, piv)
	set.readers = piv
}
