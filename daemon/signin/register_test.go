package signin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"slices"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/store"
)

// MakeCredential makes the key's one credential for the relying party and
// user, after the PIN.
func (k *securityKey) MakeCredential(_ context.Context, req device.MakeCredential) (device.Credential, error) {
	if string(req.PIN) != "123456" {
		return device.Credential{}, &hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(7)}
	}
	if req.RPID == "" || len(req.UserID) != 16 || req.UserName == "" || len(req.ClientDataHash) != 32 {
		return device.Credential{}, hwerr.ErrInvalidInput
	}
	return device.Credential{ID: []byte("cred"), PublicKeyDER: must(x509.MarshalPKIXPublicKey(k.key.Public())), Counter: k.counter}, nil
}

// TestRegister: a present card is registered to a user once it proved
// possession of its authentication key; the kind policy, the card's owners
// and the user's limit refuse before any PIN reaches it; a wrong PIN is the
// card's answer and counts against the limit.
func TestRegister(t *testing.T) {
	f := newServiceFixture(t)
	ctx := context.Background()
	fresh := card{newKeyDevice(t, must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))), "piv-new"}
	f.cards[fresh.id], f.devices[fresh.id] = fresh, fresh
	register := func(user string, dev device.Device, pin, label string) (store.Registration, error) {
		return f.svc.Register(ctx, Registering{User: user, Device: dev, PIN: []byte(pin), Label: label, By: "root"})
	}

	_, err := register("alice", f.cards["piv-1"], "123456", "")
	if e := wantError[*AlreadyRegisteredError](t, err); e.Error() != "this authenticator is already registered to alice" {
		t.Errorf("message %q", e.Error())
	}
	if _, err := register("carol", f.cards["piv-9"], "123456", ""); !errors.Is(err, store.ErrRegisteredToOther) {
		t.Errorf("bob's card for carol: %v", err)
	}
	f.svc.Policy.MaxAuthenticators = 3
	if _, err := register("alice", fresh, "123456", ""); !errors.Is(err, store.ErrLimitReached) {
		t.Errorf("alice at the limit: %v", err)
	}
	f.svc.Policy = config.Defaults().Policy
	f.svc.Policy.AllowedKinds = []string{string(device.KindSecurityKey)}
	_, err = register("carol", fresh, "123456", "")
	wantError[*KindNotAllowedError](t, err)
	f.svc.Policy = config.Defaults().Policy
	if n := f.tries(); n != 0 {
		t.Fatalf("%d tries reached a card before the refusals", n)
	}

	var wrong *hwerr.PINIncorrect
	if _, err := register("carol", fresh, "000000", ""); !errors.As(err, &wrong) || f.tries() != 1 {
		t.Fatalf("wrong PIN: %v after %d tries", err, f.tries())
	}
	reg, err := register("carol", fresh, "123456", "work card")
	if err != nil {
		t.Fatal(err)
	}
	want := must(x509.MarshalPKIXPublicKey(fresh.signer.Public()))
	if reg.ID == "" || reg.User != "carol" || reg.AuthenticatorID != "piv-new" || reg.Kind != string(device.KindSmartcard) ||
		reg.KeyID != "9a" || !slices.Equal(reg.PublicKey, want) || reg.Label != "work card" || reg.RegisteredBy != "root" {
		t.Errorf("registration %+v", reg)
	}

	// With shared authenticators allowed, bob's card can be carol's too.
	f.svc.Policy.AllowShared = true
	if reg, err := register("carol", f.cards["piv-9"], "123456", ""); err != nil || reg.AuthenticatorID != "piv-9" {
		t.Errorf("shared: %+v %v", reg, err)
	}
}

// TestRegisterSecurityKey: a security key is registered with a new
// credential for the user (its id, public key and counter), made after the
// PIN.
func TestRegisterSecurityKey(t *testing.T) {
	f := newServiceFixture(t)
	ctx := context.Background()
	sk := &securityKey{key: must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)), counter: 4}
	f.svc.RelyingParty = config.Defaults().RelyingParty()
	var wrong *hwerr.PINIncorrect
	if _, err := f.svc.Register(ctx, Registering{User: "carol", Device: sk, PIN: []byte("0000")}); !errors.As(err, &wrong) {
		t.Fatalf("wrong PIN: %v", err)
	}
	reg, err := f.svc.Register(ctx, Registering{User: "carol", Device: sk, PIN: []byte("123456"), By: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if string(reg.CredentialID) != "cred" || reg.KeyID != "Y3JlZA" || reg.SignCount != 4 || reg.Kind != string(device.KindSecurityKey) ||
		!slices.Equal(reg.PublicKey, must(x509.MarshalPKIXPublicKey(sk.key.Public()))) {
		t.Errorf("registration %+v", reg)
	}
}
