package pivbackend

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc/piv"
)

// The certificates in a card's slots say which keys it has: the daemon
// shows them, compares them with registrations before a PIN goes to the
// card, and Sign takes the key's type from them. The Device's description
// (info.Keys) is their one copy in hwauthd. It is read at insertion and read
// again before the first operation on a connection opened afresh or after
// the card was reset, since another application may have written a slot in
// between: yubico-piv-tool writes and then disconnects with a reset, and
// anyone may write while hwauthd has let go of an idle card. An application
// that writes without a reset while hwauthd holds its connection (at most
// idleRelease after hwauthd's last operation) is noticed at the next reset
// or connection.

// defaultLabel names a card whose 9A certificate has no common name.
const defaultLabel = "PIV card"

// errKeysChanged refuses a PIN operation on a card whose certificates
// changed since the daemon last saw them: the daemon compared its key
// material with the registrations before sending a PIN, and must do so
// again with what the card holds now. Nothing was sent to the card.
var errKeysChanged = fmt.Errorf("the card's certificates changed (another application wrote them); nothing was sent, try again: %w", hwerr.ErrBusy)

// readKeysLocked reads the certificate of every slot and describes its key.
func (d *Device) readKeysLocked(ctx context.Context) ([]device.Key, error) {
	keys := []device.Key{}
	for _, slot := range piv.Slots {
		cert, err := d.client.Certificate(ctx, slot)
		if errors.Is(err, hwerr.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read certificate %s: %w", slot, err)
		}
		alg, err := device.KeyAlgorithmOf(cert.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("slot %s: %w", slot, err)
		}
		keys = append(keys, device.Key{ID: slot.String(), Algorithm: alg, Public: cert.PublicKey, Certificate: cert})
	}
	return keys, nil
}

// describeKeysLocked puts keys into info with what follows from them: the
// label (9A's common name) and the outcome of the card-authentication
// challenge, which it runs again (cardauth.go); it fails when the challenge
// could not be made, and the keys are then current as of nothing.
func (d *Device) describeKeysLocked(ctx context.Context, info *device.Info, keys []device.Key) error {
	info.Keys, info.Label = keys, defaultLabel
	if k, ok := keyOf(keys, piv.SlotAuthentication); ok && k.Certificate.Subject.CommonName != "" {
		info.Label = k.Certificate.Subject.CommonName
	}
	info.CardAuth, info.Device = "", ""
	if err := d.challengeCardAuthLocked(ctx, info); err != nil {
		return err
	}
	d.keysCurrent = true
	return nil
}

// keyOf finds the key of slot in keys.
func keyOf(keys []device.Key, slot piv.Slot) (device.Key, bool) {
	i := slices.IndexFunc(keys, func(k device.Key) bool { return k.ID == slot.String() })
	if i < 0 {
		return device.Key{}, false
	}
	return keys[i], true
}

// refreshKeysLocked reads the certificates again when they may have
// changed since they were read (see above) and, when they differ from the
// description, describes the card's keys anew. It reports whether they
// differed.
func (d *Device) refreshKeysLocked(ctx context.Context) (bool, error) {
	if d.keysCurrent {
		return false, nil
	}
	keys, err := d.readKeysLocked(ctx)
	if err != nil {
		return false, err
	}
	if sameCertificates(keys, d.info.Keys) {
		d.keysCurrent = true
		return false, nil
	}
	info := d.info
	if err := d.describeKeysLocked(ctx, &info, keys); err != nil {
		return false, err
	}
	d.info = info
	return true, nil
}

// sameCertificates reports whether a and b hold the same certificates in
// the same slots.
func sameCertificates(a, b []device.Key) bool {
	return slices.EqualFunc(a, b, func(x, y device.Key) bool {
		return x.ID == y.ID && x.Certificate.Equal(y.Certificate)
	})
}
