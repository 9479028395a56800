package daemon

import (
	"encoding/pem"
	"testing"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/store"
)

func TestBoundTo(t *testing.T) {
	pemOf := func(der string) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte(der)}))
	}
	reg := store.Registration{KeyID: "9a", PublicKey: []byte("key-a")}
	withCardAuth := reg
	withCardAuth.DeviceID = "piv-9e:aa"
	card := func(device string, keys map[string]string) ipc.Authenticator {
		a := ipc.Authenticator{Device: device}
		for id, der := range keys {
			a.Keys = append(a.Keys, ipc.Key{ID: id, PublicKey: pemOf(der)})
		}
		return a
	}
	for _, tc := range []struct {
		name string
		reg  store.Registration
		info ipc.Authenticator
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
