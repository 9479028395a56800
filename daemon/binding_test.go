package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/store"
)

func TestBoundTo(t *testing.T) {
	keys := map[string]*ecdsa.PrivateKey{}
	for _, name := range []string{"key-a", "key-b"} {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
	}
	der, err := x509.MarshalPKIXPublicKey(keys["key-a"].Public())
	if err != nil {
		t.Fatal(err)
	}
	reg := store.Registration{KeyID: "9a", PublicKey: der}
	withCardAuth := reg
	withCardAuth.DeviceID = "piv-9e:aa"
	card := func(dev string, slots map[string]string) device.Info {
		a := device.Info{Device: dev}
		for id, name := range slots {
			a.Keys = append(a.Keys, device.Key{ID: id, Public: keys[name].Public()})
		}
		return a
	}
	for _, tc := range []struct {
		name string
		reg  store.Registration
		info device.Info
		want bool
	}{
		{"same key", reg, card("", map[string]string{"9a": "key-a"}), true},
		{"other key", reg, card("", map[string]string{"9a": "key-b"}), false},
		{"key in another slot only", reg, card("", map[string]string{"9c": "key-a"}), false},
		{"no keys", reg, card("", nil), false},
		{"same card-auth key and key", withCardAuth, card("piv-9e:aa", map[string]string{"9a": "key-a"}), true},
		{"copied key, other card-auth key", withCardAuth, card("piv-9e:bb", map[string]string{"9a": "key-a"}), false},
		{"copied key, no card-auth key", withCardAuth, card("", map[string]string{"9a": "key-a"}), false},
	} {
		if got := boundTo(tc.reg, tc.info); got != tc.want {
			t.Errorf("%s: boundTo = %v, want %v", tc.name, got, tc.want)
		}
	}
}
