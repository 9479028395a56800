package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
)

// TestAuthenticatorToAPI: a device's description becomes the API's JSON in
// one place: kinds and names as the API spells them, keys and certificates
// in PEM that decodes to the device's, an unknown retry count as null and
// no keys as an empty list.
func TestAuthenticatorToAPI(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alice"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := device.NewKey("9a", key.Public(), der)
	if err != nil {
		t.Fatal(err)
	}
	a := authenticatorToAPI(device.Info{ID: "piv-1", Kind: device.KindSmartcard, Backend: device.BackendPIV,
		CardAuth: device.CardAuthVerified, PIN: device.PINStateOf(hwerr.TriesLeft(2)), Keys: []device.Key{k}})
	if a.Kind != ipc.KindSmartcard || a.Backend != ipc.BackendPIV || a.CardAuthentication != ipc.CardAuthVerified ||
		a.PIN.RetriesLeft != hwerr.TriesLeft(2) || len(a.Keys) != 1 || a.Keys[0].Algorithm != "ecc-p256" {
		t.Fatalf("rendered %+v", a)
	}
	pubBlock, _ := pem.Decode([]byte(a.Keys[0].PublicKey))
	certBlock, _ := pem.Decode([]byte(a.Keys[0].Certificate))
	if pubBlock == nil || pubBlock.Type != "PUBLIC KEY" || certBlock == nil || certBlock.Type != "CERTIFICATE" || string(certBlock.Bytes) != string(der) {
		t.Fatalf("PEM of the key %q and certificate %q", a.Keys[0].PublicKey, a.Keys[0].Certificate)
	}
	if pub, err := x509.ParsePKIXPublicKey(pubBlock.Bytes); err != nil || !key.PublicKey.Equal(pub) {
		t.Errorf("the rendered public key is not the device's: %v", err)
	}

	b, err := json.Marshal(authenticatorToAPI(device.Info{ID: "fido-1", Kind: device.KindSecurityKey, Backend: device.BackendFIDO2,
		FIDO: &device.FIDOInfo{AAGUID: "00", PINSet: true}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kind":"security-key"`, `"backend":"fido2"`, `"retries_left":null`, `"keys":[]`, `"pin_set":true`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}

// TestDeviceNamesAreTheAPIs: the device contract's names render as the
// API's own constants, so the wire keeps its words when either side moves.
func TestDeviceNamesAreTheAPIs(t *testing.T) {
	for _, tc := range []struct{ device, api string }{
		{string(device.KindSmartcard), ipc.KindSmartcard},
		{string(device.KindVirtualSmartcard), ipc.KindVirtualSmartcard},
		{string(device.KindSecurityKey), ipc.KindSecurityKey},
		{device.BackendPIV, ipc.BackendPIV},
		{device.BackendPKCS11, ipc.BackendPKCS11},
		{device.BackendTPM, ipc.BackendTPM},
		{device.BackendFIDO2, ipc.BackendFIDO2},
		{string(device.CardAuthVerified), ipc.CardAuthVerified},
		{string(device.CardAuthFailed), ipc.CardAuthFailed},
		{statusToAPI(device.Status{State: device.StateUp}).State, ipc.BackendUp},
		{statusToAPI(device.Status{State: device.StateDown}).State, ipc.BackendDown},
		{statusToAPI(device.Status{State: device.StateAbsent}).State, ipc.BackendAbsent},
		{statusToAPI(device.Status{State: device.StateDisabled}).State, ipc.BackendDisabled},
		{eventToAPI(device.Event{Type: device.EventCardInserted}).Type, ipc.EventCardInserted},
		{eventToAPI(device.Event{Type: device.EventCardRemoved}).Type, ipc.EventCardRemoved},
		{eventToAPI(device.Event{Type: device.EventTouchRequired}).Type, ipc.EventTouchRequired},
		{eventToAPI(device.Event{Type: device.EventPINAttempt}).Type, ipc.EventPINAttempt},
		{eventToAPI(device.Event{Type: device.EventRegistrationRemoved}).Type, ipc.EventRegistrationRemoved},
	} {
		if tc.device != tc.api {
			t.Errorf("device says %q, the API %q", tc.device, tc.api)
		}
	}
	e := eventToAPI(device.Event{Type: device.EventRegistrationRemoved, User: "alice", Registration: "r1", Default: "r2"})
	if string(e.Data) != `{"default":"r2","registration":"r1"}` || e.User != "alice" {
		t.Errorf("registration-removed: %+v %s", e, e.Data)
	}
	if r := readerToAPI(device.Reader{Name: "r0", CardPresent: true, ATR: []byte{0x3b, 0x8f}}); r.ATR != "3b8f" || !r.CardPresent {
		t.Errorf("reader: %+v", r)
	}
	two := 2
	st := statusToAPI(device.Status{State: device.StateUp, Devices: &two, TPM: &device.TPMStatus{Cards: 2, MaxCards: 4,
		Lockout: device.TPMLockout{MaxTries: 32, InLockout: true}}})
	if st.Devices != &two || st.TPM == nil || st.TPM.Cards != 2 || st.TPM.MaxCards != 4 || st.TPM.Lockout.MaxTries != 32 || !st.TPM.Lockout.InLockout {
		t.Errorf("status: %+v", st)
	}
}

// TestVirtualCardToAPI: a virtual card's PIN counter is a number on the
// wire, 0 (blocked) included, and its attestation key is rendered in PEM.
func TestVirtualCardToAPI(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, err := device.NewKey("9a", key.Public(), nil)
	if err != nil {
		t.Fatal(err)
	}
	akDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tries hwerr.Tries
		want  string
	}{
		{hwerr.TriesLeft(5), `"pin_retries_left":5`},
		{hwerr.TriesLeft(0), `"pin_retries_left":0`},
	} {
		v := virtualCardToAPI(device.VirtualCard{ID: "vsc-1", Key: k, PINRetriesLeft: tc.tries,
			Attestation: &device.KeyAttestation{AKPublic: akDER, CertifyInfo: []byte{1}, Signature: []byte{2}}})
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tc.want) || !strings.Contains(string(b), `"algorithm":"ecc-p256"`) {
			t.Errorf("%s lacks %s", b, tc.want)
		}
		if blk, _ := pem.Decode([]byte(v.Attestation.AKPublic)); blk == nil || string(blk.Bytes) != string(akDER) {
			t.Errorf("attestation key %q is not the device's in PEM", v.Attestation.AKPublic)
		}
	}
}
