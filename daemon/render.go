package daemon

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/internal/certutil"
	"github.com/hwauthd/hwauthd/ipc"
)

// The devices describe themselves in Go and crypto terms (device.Info); the
// API shows them as JSON with PEM keys and certificates. This file is the one
// place where the one becomes the other.

// authenticatorToAPI renders a device's description as /v1/authenticators
// shows it.
func authenticatorToAPI(info device.Info) ipc.Authenticator {
	a := ipc.Authenticator{
		ID:                 info.ID,
		Kind:               string(info.Kind),
		Backend:            info.Backend,
		Reader:             info.Reader,
		Label:              info.Label,
		Serial:             info.Serial,
		Device:             info.Device,
		CardAuthentication: string(info.CardAuth),
		PIN:                pinStateToAPI(info.PIN),
		Keys:               make([]ipc.Key, 0, len(info.Keys)),
	}
	if f := info.FIDO; f != nil {
		a.FIDO = &ipc.FIDOInfo{AAGUID: f.AAGUID, Versions: f.Versions, Options: f.Options, PINSet: f.PINSet}
	}
	for _, k := range info.Keys {
		a.Keys = append(a.Keys, keyToAPI(k))
	}
	return a
}

// keyToAPI renders a key with its public key and certificate in PEM.
func keyToAPI(k device.Key) ipc.Key {
	out := ipc.Key{ID: k.ID, Algorithm: string(k.Algorithm), PublicKey: publicKeyPEM(k)}
	if k.Certificate != nil {
		out.Certificate = certutil.EncodePEM(certutil.PEMCertificate, k.Certificate.Raw)
	}
	return out
}

// publicKeyPEM is a key's public half in PKIX PEM.
func publicKeyPEM(k device.Key) string {
	der, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		return "" // devices report only the key types KeyAlgorithmOf names
	}
	return certutil.EncodePEM(certutil.PEMPublicKey, der)
}

// pinStateToAPI renders a PIN state.
func pinStateToAPI(st device.PINState) ipc.PINState {
	return ipc.PINState{RetriesLeft: st.RetriesLeft, Blocked: st.Blocked, Verified: st.Verified}
}

// readerToAPI renders a reader for GET /v1/readers, the ATR in hex.
func readerToAPI(r device.Reader) ipc.Reader {
	out := ipc.Reader{Name: r.Name, CardPresent: r.CardPresent}
	if len(r.ATR) > 0 {
		out.ATR = hex.EncodeToString(r.ATR)
	}
	return out
}

// eventToAPI renders a backend's event for the event stream.
func eventToAPI(e device.Event) ipc.Event {
	out := ipc.Event{Type: string(e.Type), Reader: e.Reader, Authenticator: e.Authenticator, User: e.User, Reason: e.Reason}
	if e.Type == device.EventRegistrationRemoved {
		out.Data, _ = json.Marshal(map[string]string{"registration": e.Registration, "default": e.Default})
	}
	return out
}

// statusToAPI renders a backend's state for /v1/status.
func statusToAPI(st device.Status) ipc.BackendStatus {
	out := ipc.BackendStatus{State: string(st.State), Detail: st.Detail, Readers: st.Readers,
		Manufacturer: st.Manufacturer, Devices: st.Devices}
	if t := st.TPM; t != nil {
		out.TPM = &ipc.TPMStatus{
			Lockout: ipc.TPMLockout{MaxTries: t.Lockout.MaxTries, Failures: t.Lockout.Failures,
				IntervalSeconds: t.Lockout.IntervalSeconds, RecoverySeconds: t.Lockout.RecoverySeconds,
				InLockout: t.Lockout.InLockout},
			Cards: t.Cards, MaxCards: t.MaxCards, CardsLeft: t.CardsLeft, PersistentAvail: t.PersistentAvail,
		}
	}
	return out
}

// virtualCardToAPI renders a virtual card for the provisioning API.
func virtualCardToAPI(c device.VirtualCard) ipc.VirtualSmartcard {
	k := keyToAPI(c.Key)
	out := ipc.VirtualSmartcard{ID: c.ID, Label: c.Label, Algorithm: k.Algorithm, PublicKey: k.PublicKey,
		Certificate: k.Certificate, Device: c.Device, PINRetriesLeft: c.PINRetriesLeft, CreatedAt: c.CreatedAt}
	if a := c.Attestation; a != nil {
		out.Attestation = &ipc.KeyAttestation{AKPublic: certutil.EncodePEM(certutil.PEMPublicKey, a.AKPublic),
			KeyPublic: a.KeyPublic, CertifyInfo: a.CertifyInfo, Signature: a.Signature, Nonce: a.Nonce}
	}
	return out
}
