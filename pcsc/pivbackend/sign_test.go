package pivbackend

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// TestSignRefusesAnAlgorithmOfAnotherKeyType: an RSA algorithm for the EC
// key in 9A is refused before the PIN goes to the card, so no try is at
// stake.
func TestSignRefusesAnAlgorithmOfAnotherKeyType(t *testing.T) {
	d, rc, _ := openResetting(t)
	digest := sha256.Sum256([]byte("wrong algorithm"))
	for _, alg := range []device.SignAlgorithm{device.RSAPKCS1v15SHA256, device.RSAPSSSHA256} {
		_, err := d.Sign(context.Background(), device.SignRequest{Key: "9a", Algorithm: alg, Digest: digest[:], PIN: []byte(pivcard.DefaultPIN)})
		if !errors.Is(err, hwerr.ErrNotSupported) {
			t.Errorf("%s with a P-256 key: %v, want not supported", alg, err)
		}
	}
	if rc.pinCommands != 0 {
		t.Errorf("%d PIN commands reached the card", rc.pinCommands)
	}
}
