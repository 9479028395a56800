//go:build !cgo

package testenv

import (
	"context"
	"errors"
	"net"
)

// DialReader needs libpcsclite, through cgo, to see pcscd's state of the
// reader (vpcdcard.go). A build without cgo has no PC/SC stack to test, so
// this twin only lets the rest of testenv (swtpm, PostgreSQL, PAM) build and
// serve the packages that test without cgo.
func (p *PCSC) DialReader(ctx context.Context, i int) (net.Conn, error) {
	return nil, errors.New("dial vpcd reader: a card needs a build with cgo (libpcsclite)")
}
