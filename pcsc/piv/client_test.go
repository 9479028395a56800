package piv_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"sync"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSAKey generates one RSA-2048 key for the whole test binary.
func testRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey
}

// countingTransmitter counts APDUs on their way to the card.
type countingTransmitter struct {
	t apdu.Transmitter
	n int
}

func (c *countingTransmitter) Transmit(ctx context.Context, b []byte) ([]byte, error) {
	c.n++
	return c.t.Transmit(ctx, b)
}

// newCard returns a card with keys in 9A (P-256), 9C (P-384), 9D (RSA-2048)
// and a client talking to it in process.
func newCard(t *testing.T) (*pivcard.Card, *piv.Client, *countingTransmitter) {
	t.Helper()
	card, err := pivcard.New(pivcard.Options{Slots: []pivcard.SlotSpec{
		{Slot: piv.SlotAuthentication, Alg: piv.KeyAlgP256},
		{Slot: piv.SlotSignature, Alg: piv.KeyAlgP384},
		{Slot: piv.SlotKeyManagement, Alg: piv.KeyAlgRSA2048, Key: testRSAKey(t)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tr := &countingTransmitter{t: pivcard.Transmitter(card)}
	return card, piv.NewClient(tr), tr
}

func TestSelectDiscoveryCHUID(t *testing.T) {
	ctx := context.Background()
	card, c, _ := newCard(t)
	app, err := c.Select(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(app.AID, piv.AID) || app.Label != pivcard.DefaultLabel || len(app.Algorithms) != 3 {
		t.Errorf("Select = %+v", app)
	}
	d, err := c.Discovery(ctx)
	if err != nil || !bytes.Equal(d.AID, piv.AID) || d.PINUsagePolicy != [2]byte{0x40, 0} {
		t.Errorf("Discovery = %+v, %v", d, err)
	}
	ch, err := c.ReadCHUID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ch.GUID != card.GUID() || ch.Expiry.IsZero() {
		t.Errorf("CHUID = %+v, card GUID %X", ch, card.GUID())
	}
	f, err := piv.ParseFASCN(ch.FASCN)
	if err != nil {
		t.Fatalf("FASC-N: %v", err)
	}
	serial, err := c.Serial(ctx)
	if err != nil || serial != "9999-9999-"+f.Credential {
		t.Errorf("Serial = %q, %v; FASC-N credential %s", serial, err, f.Credential)
	}
	_, other, _ := newCard(t)
	if s2, _ := other.Serial(ctx); s2 == serial {
		t.Errorf("two default cards share serial %s", serial)
	}
}

func TestCertificateChaining(t *testing.T) {
	ctx := context.Background()
	card, c, tr := newCard(t)
	for _, slot := range []piv.Slot{piv.SlotAuthentication, piv.SlotSignature, piv.SlotKeyManagement} {
		der := card.Certificate(slot)
		if len(der) <= 256 {
			t.Fatalf("certificate %s is %d bytes, want over 256 to exercise chaining", slot, len(der))
		}
		before := tr.n
		cert, err := c.Certificate(ctx, slot)
		if err != nil {
			t.Fatalf("Certificate(%s): %v", slot, err)
		}
		if !bytes.Equal(cert.Raw, der) {
			t.Errorf("Certificate(%s) differs from the card's", slot)
		}
		if tr.n-before < 2 {
			t.Errorf("Certificate(%s) took %d APDUs, want GET RESPONSE chaining", slot, tr.n-before)
		}
	}
	if _, err := c.Certificate(ctx, piv.SlotCardAuthentication); !errors.Is(err, hwerr.ErrNotFound) {
		t.Errorf("empty slot 9E: %v, want not found", err)
	}
}

func TestPINLifecycle(t *testing.T) {
	ctx := context.Background()
	_, c, _ := newCard(t)
	if n, err := c.PINRetries(ctx); err != nil || n != hwerr.TriesLeft(3) {
		t.Fatalf("PINRetries = %v, %v; want 3", n, err)
	}
	var pinErr *hwerr.PINIncorrect
	if err := c.VerifyPIN(ctx, []byte("654321")); !errors.As(err, &pinErr) || pinErr.RetriesLeft != hwerr.TriesLeft(2) || pinErr.What != "PIN" {
		t.Fatalf("wrong PIN: %v", err)
	}
	if n, _ := c.PINRetries(ctx); n != hwerr.TriesLeft(2) {
		t.Errorf("PINRetries after one failure = %v, want 2", n)
	}
	if err := c.VerifyPIN(ctx, []byte("12345")); !errors.Is(err, hwerr.ErrPINPolicy) {
		t.Errorf("5-digit PIN: %v, want policy error", err)
	}
	if err := c.VerifyPIN(ctx, []byte("123456789")); !errors.Is(err, hwerr.ErrPINPolicy) {
		t.Errorf("9-digit PIN: %v, want policy error", err)
	}
	if n, _ := c.PINRetries(ctx); n != hwerr.TriesLeft(2) {
		t.Errorf("policy errors spent a try: %v left", n)
	}
	if err := c.VerifyPIN(ctx, []byte("123456")); err != nil {
		t.Fatalf("right PIN: %v", err)
	}
	if st, err := c.PINStatus(ctx); err != nil || !st.Verified {
		t.Errorf("PINStatus after verify = %+v, %v", st, err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.PINStatus(ctx); st.Verified || st.RetriesLeft != hwerr.TriesLeft(3) {
		t.Errorf("PINStatus after logout = %+v, want 3 tries, not verified", st)
	}
	if err := c.ChangePIN(ctx, []byte("123456"), []byte("24681357")); err != nil {
		t.Fatalf("ChangePIN: %v", err)
	}
	if err := c.VerifyPIN(ctx, []byte("123456")); !errors.As(err, &pinErr) {
		t.Errorf("old PIN after change: %v", err)
	}
	if err := c.VerifyPIN(ctx, []byte("24681357")); err != nil {
		t.Errorf("new PIN: %v", err)
	}
}

func TestBlockAndUnblock(t *testing.T) {
	ctx := context.Background()
	_, c, _ := newCard(t)
	for want := 2; want >= 0; want-- {
		var pinErr *hwerr.PINIncorrect
		if err := c.VerifyPIN(ctx, []byte("000000")); !errors.As(err, &pinErr) || pinErr.RetriesLeft != hwerr.TriesLeft(want) {
			t.Fatalf("failure %d: %v", 3-want, err)
		}
	}
	if err := c.VerifyPIN(ctx, []byte("123456")); !errors.Is(err, hwerr.ErrPINBlocked) {
		t.Fatalf("right PIN when blocked: %v", err)
	}
	if n, err := c.PINRetries(ctx); n != hwerr.TriesLeft(0) || !errors.Is(err, hwerr.ErrPINBlocked) {
		t.Errorf("PINRetries when blocked = %v, %v", n, err)
	}
	var pukErr *hwerr.PINIncorrect
	if err := c.UnblockPIN(ctx, []byte("87654321"), []byte("111111")); !errors.As(err, &pukErr) || pukErr.What != "PUK" || pukErr.RetriesLeft != hwerr.TriesLeft(2) {
		t.Fatalf("wrong PUK: %v", err)
	}
	if err := c.UnblockPIN(ctx, []byte("12345678"), []byte("111111")); err != nil {
		t.Fatalf("UnblockPIN: %v", err)
	}
	if n, _ := c.PINRetries(ctx); n != hwerr.TriesLeft(3) {
		t.Errorf("tries after unblock = %v", n)
	}
	if err := c.VerifyPIN(ctx, []byte("111111")); err != nil {
		t.Errorf("unblocked PIN: %v", err)
	}
	if err := c.ChangePUK(ctx, []byte("12345678"), []byte("99999999")); err != nil {
		t.Fatalf("ChangePUK: %v", err)
	}
	for range 3 {
		c.UnblockPIN(ctx, []byte("12345678"), []byte("111111"))
	}
	if err := c.UnblockPIN(ctx, []byte("99999999"), []byte("111111")); !errors.Is(err, hwerr.ErrPUKBlocked) {
		t.Errorf("blocked PUK: %v", err)
	}
}

// signer reads the certificate of slot and returns its key.
func signer(t *testing.T, c *piv.Client, slot piv.Slot) *piv.Key {
	t.Helper()
	cert, err := c.Certificate(context.Background(), slot)
	if err != nil {
		t.Fatalf("certificate %s: %v", slot, err)
	}
	return c.PrivateKey(slot, cert.PublicKey)
}

var pssSHA256 = &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: rsa.PSSSaltLengthEqualsHash}

func TestSignEveryAlgorithm(t *testing.T) {
	ctx := context.Background()
	_, c, _ := newCard(t)
	msg := []byte("sign me")
	d256 := sha256.Sum256(msg)
	d384 := sha512.Sum384(msg)
	tests := []struct {
		name   string
		slot   piv.Slot
		opts   crypto.SignerOpts
		digest []byte
		verify func(pub crypto.PublicKey, sig []byte) error
	}{
		{"P-256 SHA-256", piv.SlotAuthentication, crypto.SHA256, d256[:], ecdsaVerify(d256[:])},
		{"P-256 SHA-384", piv.SlotAuthentication, crypto.SHA384, d384[:], ecdsaVerify(d384[:])},
		{"P-384 SHA-384", piv.SlotSignature, crypto.SHA384, d384[:], ecdsaVerify(d384[:])},
		{"P-384 SHA-256", piv.SlotSignature, crypto.SHA256, d256[:], ecdsaVerify(d256[:])},
		{"RSA PKCS1v15", piv.SlotKeyManagement, crypto.SHA256, d256[:], func(pub crypto.PublicKey, sig []byte) error {
			return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, d256[:], sig)
		}},
		{"RSA PSS", piv.SlotKeyManagement, pssSHA256, d256[:], func(pub crypto.PublicKey, sig []byte) error {
			return rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, d256[:], sig, pssSHA256)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := signer(t, c, tt.slot)
			if _, err := key.SignContext(ctx, rand.Reader, tt.digest, tt.opts); !errors.Is(err, hwerr.ErrPINRequired) {
				t.Fatalf("sign without PIN: %v, want PIN required", err)
			}
			if err := c.VerifyPIN(ctx, []byte(pivcard.DefaultPIN)); err != nil {
				t.Fatal(err)
			}
			sig, err := key.SignContext(ctx, rand.Reader, tt.digest, tt.opts)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if err := tt.verify(key.Public(), sig); err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
			_, err = key.SignContext(ctx, rand.Reader, tt.digest, tt.opts)
			if tt.slot.PINAlways() != errors.Is(err, hwerr.ErrPINRequired) {
				t.Errorf("second signature without a new PIN: %v (PIN always %v)", err, tt.slot.PINAlways())
			}
			c.Logout(ctx)
		})
	}
}

func ecdsaVerify(digest []byte) func(crypto.PublicKey, []byte) error {
	return func(pub crypto.PublicKey, sig []byte) error {
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest, sig) {
			return errors.New("ecdsa: bad signature")
		}
		return nil
	}
}

// TestSignRejects: a hash the key's card algorithm cannot sign with, or a
// digest of the wrong length, is refused before anything reaches the card.
func TestSignRejects(t *testing.T) {
	ctx := context.Background()
	_, c, tr := newCard(t)
	d := make([]byte, 32)
	ec, rsaKey := signer(t, c, piv.SlotAuthentication), signer(t, c, piv.SlotKeyManagement)
	tests := []struct {
		name   string
		key    *piv.Key
		opts   crypto.SignerOpts
		digest []byte
		want   error
	}{
		{"short SHA-256 digest", ec, crypto.SHA256, d[:31], hwerr.ErrInvalidInput},
		{"SHA-384 of 32 bytes", ec, crypto.SHA384, d, hwerr.ErrInvalidInput},
		{"PSS with an EC key", ec, pssSHA256, d, hwerr.ErrNotSupported},
		{"SHA-512 with an EC key", ec, crypto.SHA512, make([]byte, 64), hwerr.ErrNotSupported},
		{"no hash", ec, nil, d, hwerr.ErrNotSupported},
		{"SHA-384 with RSA", rsaKey, crypto.SHA384, make([]byte, 48), hwerr.ErrNotSupported},
		{"short PSS digest", rsaKey, pssSHA256, d[:20], hwerr.ErrInvalidInput},
		{"Ed25519 key", c.PrivateKey(piv.SlotAuthentication, ed25519.PublicKey(make([]byte, 32))), crypto.Hash(0), d, hwerr.ErrNotSupported},
	}
	for _, tt := range tests {
		before := tr.n
		if _, err := tt.key.SignContext(ctx, rand.Reader, tt.digest, tt.opts); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if tr.n != before {
			t.Errorf("%s: %d APDUs sent", tt.name, tr.n-before)
		}
	}
}

// TestCertificateReadAfresh: the client keeps no certificate, so one
// written to the card since it was last read is the one it returns.
func TestCertificateReadAfresh(t *testing.T) {
	ctx := context.Background()
	_, c, tr := newCard(t)
	first, err := c.Certificate(ctx, piv.SlotAuthentication)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pivcard.New(pivcard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr.t = pivcard.Transmitter(other) // the slot now holds another certificate
	second, err := c.Certificate(ctx, piv.SlotAuthentication)
	if err != nil {
		t.Fatal(err)
	}
	if second.Equal(first) || !bytes.Equal(second.Raw, other.Certificate(piv.SlotAuthentication)) {
		t.Errorf("the client returned the certificate it read before")
	}
}

func TestPrivateKeySigner(t *testing.T) {
	ctx := context.Background()
	_, c, _ := newCard(t)
	digest := sha256.Sum256([]byte("crypto.Signer"))
	for _, slot := range []piv.Slot{piv.SlotAuthentication, piv.SlotKeyManagement} {
		cert, err := c.Certificate(ctx, slot)
		if err != nil {
			t.Fatal(err)
		}
		key := c.PrivateKey(slot, cert.PublicKey)
		if err := c.VerifyPIN(ctx, []byte(pivcard.DefaultPIN)); err != nil {
			t.Fatal(err)
		}
		sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("%s Sign(SHA256): %v", slot, err)
		}
		if err := cert.CheckSignature(sigAlg(cert.PublicKey), []byte("crypto.Signer"), sig); err != nil {
			t.Errorf("%s: %v", slot, err)
		}
		if slot != piv.SlotKeyManagement {
			continue
		}
		pssOpts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA256}
		sig, err = key.Sign(rand.Reader, digest[:], pssOpts)
		if err != nil {
			t.Fatalf("PSS: %v", err)
		}
		if err := rsa.VerifyPSS(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig, pssOpts); err != nil {
			t.Errorf("PSS signature: %v", err)
		}
		if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA384); !errors.Is(err, hwerr.ErrNotSupported) {
			t.Errorf("RSA with SHA-384: %v, want not supported", err)
		}
	}
}

// sigAlg names the SHA-256 signature algorithm of a key for
// x509.Certificate.CheckSignature.
func sigAlg(pub crypto.PublicKey) x509.SignatureAlgorithm {
	if _, ok := pub.(*rsa.PublicKey); ok {
		return x509.SHA256WithRSA
	}
	return x509.ECDSAWithSHA256
}
