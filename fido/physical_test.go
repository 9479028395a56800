package fido

import (
	"os"
	"testing"

	"github.com/hwauthd/hwauthd/fido/webauthn"
)

// TestPhysicalKey runs against a real security key when
// HWAUTHD_TEST_FIDO_DEVICE names its path (e.g. /dev/hidraw3). It needs a
// touch; with HWAUTHD_TEST_FIDO_PIN it uses that PIN, which must be the
// key's current PIN (it is never changed or guessed).
func TestPhysicalKey(t *testing.T) {
	path := os.Getenv("HWAUTHD_TEST_FIDO_DEVICE")
	if path == "" {
		t.Skip("no physical security key: set HWAUTHD_TEST_FIDO_DEVICE to its hidraw path to run this test")
	}
	k, err := New(Config{TouchNotice: func(string) { t.Log("touch the key now") }}).Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	info, err := k.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("AAGUID %s versions %v options %v", info.AAGUID, info.Versions, info.Options)
	pinEnv := os.Getenv("HWAUTHD_TEST_FIDO_PIN")
	var p func() []byte
	if pinEnv != "" {
		p = func() []byte { return []byte(pinEnv) }
		if err := k.VerifyPIN(ctx, p()); err != nil {
			t.Fatalf("verify PIN: %v", err)
		}
	} else {
		p = func() []byte { return nil }
	}
	cred, err := k.MakeCredential(ctx, "hwauthd.test", []byte("hwauthd-test"), "hwauthd-test", hash("reg"), ES256, p(), false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := k.Assert(ctx, "hwauthd.test", hash("login"), [][]byte{cred.ID}, p(), true)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := webauthn.ParseCOSEKey(cred.PublicKeyCOSE)
	if _, err := webauthn.VerifyAssertion(pub, "hwauthd.test", hash("login"), a.AuthData, a.Sig, true, pinEnv != "", cred.Counter); err != nil {
		t.Fatal(err)
	}
}
