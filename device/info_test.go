package device

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/hwerr"
)

// TestKeyAlgorithmOf: the API's names for the keys devices hold, and
// ErrNotSupported for others.
func TestKeyAlgorithmOf(t *testing.T) {
	k := testKeys(t)
	p256, p384, rsa2048 := k.p256, k.p384, k.rsa
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		pub  any
		want KeyAlgorithm
	}{
		{p256.Public(), ECCP256},
		{p384.Public(), ECCP384},
		{rsa2048.Public(), "rsa-2048"},
	} {
		if got, err := KeyAlgorithmOf(tc.pub); err != nil || got != tc.want {
			t.Errorf("%T: %q, %v; want %q", tc.pub, got, err, tc.want)
		}
	}
	for _, pub := range []any{p521.Public(), ed, nil} {
		if got, err := KeyAlgorithmOf(pub); !errors.Is(err, hwerr.ErrNotSupported) {
			t.Errorf("%T: %q, %v; want ErrNotSupported", pub, got, err)
		}
	}
}

// TestParseKey: a key from PKIX DER and a DER certificate, each parsed once;
// bytes that do not parse are refused.
func TestParseKey(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alice"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey("9a", pubDER, certDER)
	if err != nil || k.ID != "9a" || k.Algorithm != ECCP256 || !key.PublicKey.Equal(k.Public) ||
		k.Certificate == nil || k.Certificate.Subject.CommonName != "alice" {
		t.Fatalf("ParseKey = %+v, %v", k, err)
	}
	if k, err := ParseKey("9a", pubDER, nil); err != nil || k.Certificate != nil {
		t.Errorf("without certificate: %+v, %v", k, err)
	}
	if _, err := ParseKey("9a", []byte("not DER"), nil); err == nil {
		t.Error("a public key that does not parse was accepted")
	}
	if _, err := ParseKey("9a", pubDER, []byte("not DER")); err == nil {
		t.Error("a certificate that does not parse was accepted")
	}
}

// TestPINStateOf: no try left is blocked; an unknown count is not.
func TestPINStateOf(t *testing.T) {
	if st := PINStateOf(hwerr.TriesLeft(0)); !st.Blocked {
		t.Errorf("0 tries: %+v", st)
	}
	if st := PINStateOf(hwerr.TriesLeft(3)); st.Blocked || st.RetriesLeft != hwerr.TriesLeft(3) {
		t.Errorf("3 tries: %+v", st)
	}
	if st := PINStateOf(hwerr.Tries{}); st.Blocked || st.RetriesLeft.Known() {
		t.Errorf("unknown: %+v", st)
	}
}
