package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/fido/fidotest/softkey"
	"github.com/hwauthd/hwauthd/fido/fidotest/vfido"
	"github.com/hwauthd/hwauthd/fido/webauthn"
	"github.com/hwauthd/hwauthd/ipc"
)

// withFIDO turns security keys on, watching dir instead of /dev: the test
// "plugs" a software key by creating dir/hidraw0 after starting it, and the
// daemon then lists it through the real libfido2 (the vfido interposer in
// this test binary).
func withFIDO(dir string) func(*config.Config) {
	return func(c *config.Config) {
		c.FIDO.Enabled = true
		c.FIDO.DeviceDir = dir
		c.FIDO.RPID = "pam://hwauthd-test"
	}
}

// plug starts a software key and makes the daemon see it.
func (h *harness) plug(dir string, opts softkey.Options) (*vfido.Device, string) {
	h.t.Helper()
	dev := vfido.Start(h.t, opts)
	if err := os.WriteFile(filepath.Join(dir, "hidraw0"), nil, 0o600); err != nil {
		h.t.Fatal(err)
	}
	e := h.waitFor("key-attached", func(e ipc.Event) bool { return e.Type == ipc.EventKeyAttached })
	return dev, e.Authenticator
}

func TestSecurityKeyPINRegistrationAndSignIn(t *testing.T) {
	dir := t.TempDir()
	h := start(t, withFIDO(dir))
	ctx := ctxT(t)
	dev, id := h.plug(dir, softkey.Options{})
	au, err := h.c.Authenticator(ctx, id)
	if err != nil || au.Kind != ipc.KindSecurityKey || au.Backend != ipc.BackendFIDO2 || au.FIDO == nil || au.FIDO.PINSet {
		t.Fatalf("new key: %+v %v", au, err)
	}
	if _, err := h.c.SetPIN(ctx, id, []byte("4321")); err != nil {
		t.Fatal(err)
	}
	if err := pinOp(h.c.VerifyPIN(ctx, id, []byte("0000"))); !containsRetries(err, 7) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if err := pinOp(h.c.VerifyPIN(ctx, id, []byte("4321"))); err != nil {
		t.Fatal(err)
	}
	// A credential made through the daemon verifies with its public key.
	cdh := sha256.Sum256([]byte("client data"))
	cred, err := h.c.MakeCredential(ctx, id, ipc.MakeCredentialRequest{RPID: "example.org", UserID: []byte("u1"), UserName: "u1", ClientDataHash: cdh[:], PIN: ipc.Secret("4321")})
	if err != nil {
		t.Fatal(err)
	}
	as, err := h.c.GetAssertion(ctx, id, ipc.GetAssertionRequest{RPID: "example.org", ClientDataHash: cdh[:], CredentialIDs: [][]byte{cred.CredentialID}, UserPresence: true, PIN: ipc.Secret("4321")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode([]byte(cred.PublicKey))
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := webauthn.VerifyAssertion(pub, "example.org", cdh[:], as.AuthData, as.Signature, true, true, 0); err != nil {
		t.Fatalf("assertion: %v", err)
	}
	// Registered to a user, the key signs them in.
	reg, err := h.c.Register(ctx, alice, ipc.RegisterRequest{Authenticator: id, PIN: ipc.Secret("4321")})
	if err != nil || reg.Kind != ipc.KindSecurityKey {
		t.Fatalf("register: %+v %v", reg, err)
	}
	if _, err := h.signIn(alice, "4321"); err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	if _, err := h.signIn(alice, "9999"); apiCode(err) != ipc.CodePINIncorrect {
		t.Fatalf("wrong PIN at sign-in: %v", err)
	}
	// A counter that goes backwards is refused as a possible clone.
	dev.Key.SetCounter(1)
	if _, err := h.signIn(alice, "4321"); apiCode(err) != ipc.CodePossibleClone {
		t.Fatalf("counter gone backwards: %v", err)
	}
	// Unplugged, it is gone.
	dev.Unplug()
	if err := os.Remove(filepath.Join(dir, "hidraw0")); err != nil {
		t.Fatal(err)
	}
	h.waitFor("key-detached", func(e ipc.Event) bool { return e.Type == ipc.EventKeyDetached && e.Authenticator == id })
}

func TestSecurityKeyTouchCancelAndUnplug(t *testing.T) {
	dir := t.TempDir()
	h := start(t, withFIDO(dir))
	touch := make(chan struct{})
	dev, id := h.plug(dir, softkey.Options{Presence: softkey.PresenceChannel, Touch: touch})
	cdh := sha256.Sum256([]byte("client data"))
	req := ipc.MakeCredentialRequest{RPID: "example.org", UserID: []byte("u"), UserName: "u", ClientDataHash: cdh[:]}

	// The person is asked to touch; the client gives up; the key stays usable.
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() { _, err := h.c.MakeCredential(ctx, id, req); done <- err }()
	<-dev.Key.TouchRequests()
	h.waitFor("touch-required", func(e ipc.Event) bool { return e.Type == ipc.EventTouchRequired && e.Authenticator == id })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled request succeeded")
	}
	// The next operation reaches the key (the cancelled one let go of it)
	// and completes with a touch.
	go func() { _, err := h.c.MakeCredential(ctxT(t), id, req); done <- err }()
	<-dev.Key.TouchRequests()
	touch <- struct{}{}
	if err := <-done; err != nil {
		t.Fatalf("after a cancelled wait: %v", err)
	}

	// Unplugged while waiting for a touch: authenticator_removed, no hang.
	go func() { _, err := h.c.MakeCredential(ctxT(t), id, req); done <- err }()
	<-dev.Key.TouchRequests()
	dev.Unplug()
	if err := <-done; apiCode(err) != ipc.CodeAuthenticatorRemoved {
		t.Fatalf("unplugged during the wait: %v", err)
	}
}

// TestSecurityKeyPINBlocks: the wrong PIN that blocks a security key's PIN
// (the eighth, with a power cycle after each three, as a person re-plugging
// the key would) answers pin_blocked with the pin-blocked event and advice
// that fits a key (no PUK: a reset, through the administrator); the next
// try answers pin_blocked again, without a second event.
func TestSecurityKeyPINBlocks(t *testing.T) {
	dir := t.TempDir()
	h := start(t, withFIDO(dir))
	ctx := ctxT(t)
	dev, id := h.plug(dir, softkey.Options{})
	if _, err := h.c.SetPIN(ctx, id, []byte("4321")); err != nil {
		t.Fatal(err)
	}
	var err error
	for try := 1; try <= 8; try++ {
		err = pinOp(h.c.VerifyPIN(ctx, id, []byte("0000")))
		switch {
		case try%3 == 0:
			// The third in a row blocks PIN auth until the key is
			// re-plugged (the try still counts).
			if apiCode(err) != ipc.CodeLockout || dev.Key.PINRetries() != 8-try {
				t.Fatalf("wrong PIN %d: %v, %d tries left", try, err, dev.Key.PINRetries())
			}
			dev.Key.PowerCycle()
		case try < 8 && !containsRetries(err, 8-try):
			t.Fatalf("wrong PIN %d: %v", try, err)
		}
	}
	var apiErr *ipc.Error
	if !errorsAs(err, &apiErr) || apiErr.Code != ipc.CodePINBlocked || apiErr.Details["unblock"] != "administrator" || !strings.Contains(apiErr.Message, "reset") {
		t.Fatalf("the try that blocks: %#v", err)
	}
	h.waitFor("pin-blocked", func(e ipc.Event) bool { return e.Type == ipc.EventPINBlocked && e.Authenticator == id })
	if dev.Key.PINRetries() != 0 {
		t.Fatalf("the key has %d tries left", dev.Key.PINRetries())
	}
	if err := pinOp(h.c.VerifyPIN(ctx, id, []byte("4321"))); apiCode(err) != ipc.CodePINBlocked {
		t.Fatalf("after blocking: %v", err)
	}
}
