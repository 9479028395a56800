package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
)

func TestListSoftHSM(t *testing.T) {
	s := newSoftToken(t, Config{})
	st := s.b.Status()
	if st.State != device.StateUp || st.Devices == nil || *st.Devices != 2 {
		t.Errorf("status = %+v, want up with 2 devices", st)
	}
	info := s.device(t, "hw").Info()
	if info.Kind != device.KindSmartcard || info.Backend != device.BackendPKCS11 || info.Serial == "" || info.Reader != "" {
		t.Errorf("info = %+v", info)
	}
	if !strings.HasPrefix(info.ID, "p11-") || info.ID == s.device(t, "other").Info().ID {
		t.Errorf("ids %q and %q are not distinct p11- ids", info.ID, s.device(t, "other").Info().ID)
	}
	want := map[string]string{"01": "ecc-p256", "02": "ecc-p384", "03": "rsa-2048"}
	if len(info.Keys) != len(want) {
		t.Fatalf("keys = %+v", info.Keys)
	}
	for _, k := range info.Keys {
		if want[k.ID] != string(k.Algorithm) {
			t.Errorf("key %s algorithm %q, want %q", k.ID, k.Algorithm, want[k.ID])
		}
		if alg, err := device.KeyAlgorithmOf(k.Public); err != nil || alg != k.Algorithm {
			t.Errorf("key %s: public key of %q, %v; listed as %q", k.ID, alg, err, k.Algorithm)
		}
	}
}

func publicKeyOf(t *testing.T, d *Device, id string) crypto.PublicKey {
	t.Helper()
	for _, k := range d.Info().Keys {
		if k.ID == id {
			return k.Public
		}
	}
	t.Fatalf("no key %s", id)
	return nil
}

func TestSignEachAlgorithm(t *testing.T) {
	s := newSoftToken(t, Config{})
	d := s.device(t, "hw")
	msg := []byte("sign-in challenge")
	h256 := sha256.Sum256(msg)
	h384 := sha512.Sum384(msg)
	for _, tc := range []struct {
		key, alg string
		digest   []byte
		verify   func(pub crypto.PublicKey, sig []byte) bool
	}{
		{"01", "ecdsa-sha256", h256[:], func(pub crypto.PublicKey, sig []byte) bool {
			return ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), h256[:], sig)
		}},
		{"02", "ecdsa-sha384", h384[:], func(pub crypto.PublicKey, sig []byte) bool {
			return ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), h384[:], sig)
		}},
		{"03", "rsa-pkcs1v15-sha256", h256[:], func(pub crypto.PublicKey, sig []byte) bool {
			return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, h256[:], sig) == nil
		}},
		{"03", "rsa-pss-sha256", h256[:], func(pub crypto.PublicKey, sig []byte) bool {
			opts := &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}
			return rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, h256[:], sig, opts) == nil
		}},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			pin := []byte(testPIN)
			sig, err := d.Sign(context.Background(), device.SignRequest{Key: tc.key, Algorithm: device.SignAlgorithm(tc.alg), Digest: tc.digest, PIN: pin})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if !tc.verify(publicKeyOf(t, d, tc.key), sig) {
				t.Error("signature does not verify with the listed public key")
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	s := newSoftToken(t, Config{})
	d := s.device(t, "hw")
	digest := make([]byte, 32)
	for _, tc := range []struct {
		name string
		req  device.SignRequest
		want error
	}{
		{"unknown key", device.SignRequest{Key: "7f", Algorithm: "ecdsa-sha256", Digest: digest, PIN: []byte(testPIN)}, hwerr.ErrNotFound},
		{"no PIN", device.SignRequest{Key: "01", Algorithm: "ecdsa-sha256", Digest: digest}, hwerr.ErrPINRequired},
		{"RSA algorithm on an EC key", device.SignRequest{Key: "01", Algorithm: "rsa-pss-sha256", Digest: digest, PIN: []byte(testPIN)}, hwerr.ErrNotSupported},
		// Refused before the PIN goes to the token: no PIN error.
		{"RSA algorithm on an EC key, wrong PIN", device.SignRequest{Key: "01", Algorithm: "rsa-pkcs1v15-sha256", Digest: digest, PIN: []byte("000000")}, hwerr.ErrNotSupported},
		{"short digest", device.SignRequest{Key: "01", Algorithm: "ecdsa-sha384", Digest: digest, PIN: []byte(testPIN)}, hwerr.ErrInvalidInput},
	} {
		if _, err := d.Sign(context.Background(), tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	var pi *hwerr.PINIncorrect
	_, err := d.Sign(context.Background(), device.SignRequest{Key: "01", Algorithm: "ecdsa-sha256", Digest: digest, PIN: []byte("000000")})
	if !errors.As(err, &pi) || pi.RetriesLeft != hwerr.TriesLeft(-1) {
		t.Errorf("wrong PIN: err = %v, want PINIncorrect with unknown tries", err)
	}
}

func TestPINOperations(t *testing.T) {
	s := newSoftToken(t, Config{})
	d := s.device(t, "hw")
	ctx := context.Background()
	if err := d.VerifyPIN(ctx, []byte(testPIN)); err != nil {
		t.Fatalf("right PIN: %v", err)
	}
	var pi *hwerr.PINIncorrect
	if err := d.VerifyPIN(ctx, []byte("999999")); !errors.As(err, &pi) || pi.RetriesLeft != hwerr.TriesLeft(-1) || pi.What != "PIN" {
		t.Fatalf("wrong PIN: %v", err)
	}
	if st, err := d.PINState(ctx); err != nil || st.Blocked {
		t.Errorf("PINState = %+v, %v", st, err)
	}
	if err := d.ChangePIN(ctx, []byte(testPIN), []byte("12")); !errors.Is(err, hwerr.ErrPINPolicy) {
		t.Errorf("too short new PIN: %v", err)
	}
	if err := d.ChangePIN(ctx, []byte(testPIN), []byte("24680")); err != nil {
		t.Fatalf("ChangePIN: %v", err)
	}
	if err := d.VerifyPIN(ctx, []byte(testPIN)); !errors.As(err, &pi) {
		t.Errorf("old PIN after change: %v", err)
	}
	if err := d.VerifyPIN(ctx, []byte("24680")); err != nil {
		t.Errorf("new PIN after change: %v", err)
	}
	if err := d.UnblockPIN(ctx, []byte("00000000"), []byte("13579")); !errors.As(err, &pi) || pi.What != "PUK" {
		t.Errorf("wrong SO PIN: %v", err)
	}
	if err := d.UnblockPIN(ctx, []byte(testSOPIN), []byte("13579")); err != nil {
		t.Fatalf("UnblockPIN: %v", err)
	}
	if err := d.VerifyPIN(ctx, []byte("13579")); err != nil {
		t.Errorf("PIN set by unblock: %v", err)
	}
}

// TestRescanFindsCertificate writes a certificate for key 01 while the
// backend runs; Rescan shows it.
func TestRescanFindsCertificate(t *testing.T) {
	s := newSoftToken(t, Config{})
	d := s.device(t, "hw")
	pub := publicKeyOf(t, d, "01")
	ca, err := ecdsa.GenerateKey(pub.(*ecdsa.PublicKey).Curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hw user"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, ca)
	if err != nil {
		t.Fatal(err)
	}
	s.hsm.WriteCertificate("hw", testPIN, "01", der)
	s.b.Rescan()
	waitFor(t, s.b, "the certificate", func() bool {
		for _, k := range s.device(t, "hw").Info().Keys {
			if k.ID == "01" && k.Certificate != nil {
				return bytes.Equal(k.Certificate.Raw, der)
			}
		}
		return false
	})
}

func TestDisabledAndAbsent(t *testing.T) {
	for _, tc := range []struct {
		modules []string
		want    device.State
	}{{nil, device.StateDisabled}, {[]string{"/nonexistent/module.so"}, device.StateAbsent}} {
		b := NewBackend(Config{Modules: tc.modules}, nil)
		runBackend(t, b, newFakeHost())
		waitFor(t, b, string(tc.want), func() bool { return b.Status().State == tc.want })
	}
}
