package pivcard

import (
	"context"

	"github.com/hwauthd/hwauthd/pcsc/apdu"
)

// Transmitter returns an apdu.Transmitter that hands APDUs straight to the
// card in process, for tests of clients without pcscd.
func Transmitter(c *Card) apdu.Transmitter { return transmitter{c} }

type transmitter struct{ c *Card }

var _ apdu.Transmitter = transmitter{}

// Transmit implements apdu.Transmitter.
func (t transmitter) Transmit(ctx context.Context, b []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return t.c.Transmit(b), nil
}
