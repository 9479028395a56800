package pivbackend

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// insGetData picks GET DATA, which reads certificates.
const insGetData = 0xCB

// rewrite replaces what the card behind rc holds with a card of the same
// GUID with new keys in 9A and 9E, as another application re-provisioning
// it would, and returns the new 9A certificate.
func rewrite(t *testing.T, rc *resettingCard) *x509.Certificate {
	t.Helper()
	guid := rc.card.GUID()
	card, err := pivcard.New(pivcard.Options{GUID: guid[:], Slots: []pivcard.SlotSpec{
		{Slot: piv.SlotAuthentication, Alg: piv.KeyAlgP256},
		{Slot: piv.SlotCardAuthentication, Alg: piv.KeyAlgP256},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rc.card = card
	cert, err := x509.ParseCertificate(card.Certificate(piv.SlotAuthentication))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// once picks the first command only.
func once() func([]byte) bool {
	done := false
	return func([]byte) bool {
		first := !done
		done = true
		return first
	}
}

// shows reports whether d describes 9A with cert.
func shows(d *Device, cert *x509.Certificate) bool {
	k, ok := keyOf(d.Info().Keys, piv.SlotAuthentication)
	return ok && k.Certificate.Equal(cert)
}

func signWith(d *Device, pin string) ([]byte, []byte, error) {
	digest := sha256.Sum256([]byte("after the certificates changed"))
	sig, err := d.Sign(context.Background(), device.SignRequest{Key: "9a", Algorithm: device.ECDSASHA256, Digest: digest[:], PIN: []byte(pin)})
	return digest[:], sig, err
}

// TestKeysReadAgainAfterReset: another application rewrote the card and
// reset it. The next operation reads the certificates again; a PIN
// operation is refused busy before the PIN goes to the card, since the
// daemon checked the old keys against the registrations; the description
// shows the new keys and the card-authentication outcome of the new 9E
// key, and the next signature is made and verifies with the new key.
func TestKeysReadAgainAfterReset(t *testing.T) {
	d, rc, old := openResetting(t)
	if !shows(d, old) || d.Info().CardAuth != "" {
		t.Fatalf("at insertion: %+v", d.Info())
	}
	cert := rewrite(t, rc)
	rc.resetAt = once()
	if _, _, err := signWith(d, pivcard.DefaultPIN); !errors.Is(err, hwerr.ErrBusy) {
		t.Fatalf("sign after the card was rewritten: %v, want busy", err)
	}
	if rc.pinCommands != 0 {
		t.Errorf("%d PIN commands reached the rewritten card before the daemon saw its keys", rc.pinCommands)
	}
	info := d.Info()
	if !shows(d, cert) || len(info.Keys) != 2 || info.CardAuth != device.CardAuthVerified || !strings.HasPrefix(info.Device, CardAuthDevicePrefix) {
		t.Fatalf("after the rewrite the device shows %+v", info)
	}
	digest, sig, err := signWith(d, pivcard.DefaultPIN)
	if err != nil {
		t.Fatalf("second try: %v", err)
	}
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest, sig) {
		t.Error("the signature does not verify with the new certificate")
	}
}

// TestKeysReadAgainAfterReconnecting: a card hwauthd let go of while idle
// may have been rewritten; the first operation on the new connection reads
// the certificates, and one that sends no PIN (the PIN state) goes on.
func TestKeysReadAgainAfterReconnecting(t *testing.T) {
	d, rc, _ := openResetting(t)
	cert := rewrite(t, rc)
	d.mu.Lock()
	d.releaseLocked() // as releaseIdle does
	d.mu.Unlock()
	if _, err := d.PINState(context.Background()); err != nil {
		t.Fatalf("PIN state on a new connection: %v", err)
	}
	if !shows(d, cert) {
		t.Error("the device still shows the certificate read before it let go of the card")
	}
}

// getDataCounter counts GET DATA commands on their way to the card.
type getDataCounter struct {
	*resettingCard
	n int
}

func (c *getDataCounter) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if len(cmd) > 1 && cmd[1] == insGetData {
		c.n++
	}
	return c.resettingCard.Transmit(ctx, cmd)
}

// TestKeysNotReadWhileConnected: on one connection without a reset the
// certificates are read once, at insertion; a reset makes the next
// operation read them once more, and the one after reads none.
func TestKeysNotReadWhileConnected(t *testing.T) {
	card, err := pivcard.New(pivcard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &getDataCounter{resettingCard: &resettingCard{card: card}}
	d, err := open(context.Background(), "Test PCD 00 00", func(context.Context, string) (cardConn, error) { return c, nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	reads := func(what string, want bool) {
		t.Helper()
		before := c.n
		if _, err := d.PINState(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := c.n > before; got != want {
			t.Errorf("%s: %d GET DATA commands", what, c.n-before)
		}
	}
	if c.n == 0 {
		t.Fatal("insertion read no certificate")
	}
	reads("on the connection of the insertion", false)
	c.resetAt = once()
	reads("after a reset", true)
	reads("after the reset's re-read", false)
	if _, sig, err := signWith(d, pivcard.DefaultPIN); err != nil || len(sig) == 0 {
		t.Errorf("sign on an unchanged card after a reset: %v", err)
	}
	if !bytes.Equal(d.Info().Keys[0].Certificate.Raw, card.Certificate(piv.SlotAuthentication)) {
		t.Error("the description lost the unchanged certificate")
	}
}

// TestResetDuringCardAuthentication: another application resets the card
// just as the card-authentication challenge goes to it, at insertion and
// when a rewritten card is read again. The challenge is made again on the
// reset card, which passes it; the reset is not taken for a card that
// failed.
func TestResetDuringCardAuthentication(t *testing.T) {
	atChallenge := func(cmd []byte) bool { return cmd[1] == insSign && cmd[3] == byte(piv.SlotCardAuthentication) }
	card, err := pivcard.New(pivcard.Options{Slots: []pivcard.SlotSpec{
		{Slot: piv.SlotAuthentication, Alg: piv.KeyAlgP256},
		{Slot: piv.SlotCardAuthentication, Alg: piv.KeyAlgP256},
	}})
	if err != nil {
		t.Fatal(err)
	}
	reset := false
	rc := &resettingCard{card: card, resetAt: func(cmd []byte) bool {
		first := !reset && atChallenge(cmd)
		reset = reset || first
		return first
	}}
	d, err := open(context.Background(), "Test PCD 00 00", func(context.Context, string) (cardConn, error) { return rc, nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	if info := d.Info(); rc.resets != 1 || info.CardAuth != device.CardAuthVerified {
		t.Fatalf("after a reset at the insertion's challenge (%d resets): card authentication %q", rc.resets, info.CardAuth)
	}

	rewrite(t, rc)
	reset, n := false, 0
	rc.resetAt = func(cmd []byte) bool { // the reset that announces the rewrite, then one at the challenge
		n++
		first := n == 1 || !reset && atChallenge(cmd)
		reset = reset || n > 1 && first
		return first
	}
	if _, err := d.PINState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if info := d.Info(); rc.resets != 3 || info.CardAuth != device.CardAuthVerified {
		t.Errorf("after a reset at the challenge of the rewritten card (%d resets): card authentication %q", rc.resets, info.CardAuth)
	}
}
