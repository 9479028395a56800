package pivbackend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
)

// A card's GUID (CHUID) and certificates are public: any card can copy them
// (issue #13, defect 3). What a copy cannot have is the private key of the
// card-authentication slot 9E, which signs without a PIN (SP 800-73-4 Part 1
// §3.2.4). Once per insertion, before any PIN is sent, a card with a 9E
// certificate is challenged: it signs a fresh random digest, which must
// verify with that certificate's key. A card that passes is identified by
// that key (Device "piv-9e:<sha256>", which registrations record); one that
// fails is marked so and gets no PIN from the daemon.

// CardAuthDevicePrefix starts the Device of a PIV card identified by its
// card-authentication key.
const CardAuthDevicePrefix = "piv-9e:"

// challengeCardAuthLocked challenges slot 9E, if info has a key there, and
// records the outcome in info. When the challenge could not be made (the
// card was reset by another application or went away, or ctx ended) the
// outcome is unknown: it records nothing and returns the error, so that the
// operation starts over or fails. A card that refuses to sign or signs
// wrongly fails.
func (d *Device) challengeCardAuthLocked(ctx context.Context, info *device.Info) error {
	key, ok := keyOf(info.Keys, piv.SlotCardAuthentication)
	if !ok {
		return nil
	}
	alg, err := device.SignAlgorithmFor(key.Public)
	if _, pivErr := piv.KeyAlgOf(key.Public); err != nil || pivErr != nil {
		return nil // a key the card cannot sign with: nothing is claimed
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("card authentication: %w", err)
	}
	h := alg.Hash().New()
	h.Write(nonce)
	digest := h.Sum(nil)
	sig, err := d.client.PrivateKey(piv.SlotCardAuthentication, key.Public).SignContext(ctx, rand.Reader, digest, alg.SignerOpts())
	if unreached(ctx, err) {
		return fmt.Errorf("card authentication: %w", err)
	}
	if err != nil || alg.Verify(key.Public, digest, sig) != nil {
		info.CardAuth = device.CardAuthFailed
		return nil
	}
	sum := sha256.Sum256(key.Certificate.RawSubjectPublicKeyInfo)
	info.CardAuth = device.CardAuthVerified
	info.Device = CardAuthDevicePrefix + hex.EncodeToString(sum[:])
	return nil
}

// unreached reports whether err means a command did not get the card's
// answer: a reset by another application, the card or pcscd gone, the
// connection closed, or ctx ended.
func unreached(ctx context.Context, err error) bool {
	return err != nil && (ctx.Err() != nil || errors.Is(err, pcsc.ErrCardReset) || errors.Is(err, pcsc.ErrClosed) ||
		errors.Is(err, hwerr.ErrRemoved) || errors.Is(err, hwerr.ErrUnavailable))
}

// keysFingerprint is a short hash of the card's key material and its reader,
// which tells apart two present cards that give the same GUID.
func keysFingerprint(info device.Info) string {
	h := sha256.New()
	for _, k := range info.Keys {
		h.Write(k.Certificate.RawSubjectPublicKeyInfo)
	}
	h.Write([]byte(info.Reader))
	return hex.EncodeToString(h.Sum(nil)[:4])
}

// distinguish gives d, not attached yet, an id of its own when another
// present card already has its GUID-based id: both stay listed, and neither
// one's removal takes the other from the list.
func (d *Device) distinguish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.info.ID += "-" + keysFingerprint(d.info)
	d.id = d.info.ID
}

// setID changes the device's id (restoreID), with the backend's lock held.
func (d *Device) setID(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.info.ID = id
	d.id = id
}
