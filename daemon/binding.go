package daemon

import (
	"context"
	"crypto"
	"crypto/x509"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/store"
)

// An authenticator's id comes from what the card says (a PIV card's CHUID
// GUID), which any card can copy (issue #13, defect 3). Before a PIN or PUK
// is sent to a device, checkBinding makes sure it is the authenticator it
// claims to be: not a card that failed its card-authentication challenge
// at insertion, and, when registrations carry its id, holding the keys of
// one of them (its card-authentication key when the registration recorded
// one, and the registered key). A card that is not is answered
// authenticator_mismatch, announced with an event, and sent nothing.

// Reasons of the authenticator-mismatch event.
const (
	reasonCardAuthFailed = "the card failed its card-authentication challenge (slot 9E): it is not the card it claims to be"
	reasonKeysDiffer     = "the card's keys are not those registered under its id"
)

// checkBinding refuses a device that is not the authenticator it claims to
// be.
func (d *Daemon) checkBinding(ctx context.Context, info device.Info) error {
	if info.CardAuth == device.CardAuthFailed {
		return d.mismatch(info, reasonCardAuthFailed)
	}
	if info.Kind == device.KindSecurityKey {
		return nil // its credentials prove themselves in each assertion
	}
	regs, err := d.store.FindByAuthenticator(ctx, info.ID)
	if err != nil || len(regs) == 0 {
		return err
	}
	for _, reg := range regs {
		if boundTo(reg, info) {
			return nil
		}
	}
	return d.mismatch(info, reasonKeysDiffer)
}

// boundTo reports whether the device described by info holds the key
// material of reg.
func boundTo(reg store.Registration, info device.Info) bool {
	if reg.DeviceID != "" && reg.DeviceID != info.Device {
		return false
	}
	for _, k := range info.Keys {
		if k.ID != reg.KeyID {
			continue
		}
		registered, err := x509.ParsePKIXPublicKey(reg.PublicKey)
		if err != nil {
			return false
		}
		pub, ok := k.Public.(interface{ Equal(crypto.PublicKey) bool })
		return ok && pub.Equal(registered)
	}
	return false
}

// mismatch announces a device that is not what it claims and returns the
// error for the request.
func (d *Daemon) mismatch(info device.Info, reason string) error {
	d.log.Warn("authenticator mismatch; no PIN sent", "id", info.ID, "reader", info.Reader, "reason", reason)
	d.manager.Publish(ipc.Event{Type: ipc.EventAuthenticatorMismatch, Authenticator: info.ID, Reader: info.Reader, Reason: reason})
	return ipc.Errorf(ipc.CodeAuthenticatorMismatch, "this card is not the authenticator %s it claims to be (%s); it was sent no PIN. Use your own card, and tell IT", info.ID, reason)
}
