package daemon

import (
	"crypto/x509"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
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
	return ipc.PINState{RetriesLeft: triesToAPI(st.RetriesLeft), Blocked: st.Blocked, Verified: st.Verified}
}

// triesToAPI renders a retry counter as the API's retries_left: a number,
// or null when the device does not say.
func triesToAPI(t hwerr.Tries) *int {
	n, ok := t.Left()
	if !ok {
		return nil
	}
	return &n
}
