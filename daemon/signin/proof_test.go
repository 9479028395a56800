package signin

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
)

// keyDevice is a fake device below the backend interface with one key,
// "9a", that signs only after its PIN as the backends do: ECDSA in ASN.1,
// RSA in PKCS #1 v1.5 or PSS. What it reports in Info can be another key
// than the one it signs with (an impostor).
type keyDevice struct {
	device.Device // the rest of the interface: not called by proofs
	signer        crypto.Signer
	pin           string
	reported      device.Key
	signed        []device.SignRequest
}

func newKeyDevice(t *testing.T, signer crypto.Signer) *keyDevice {
	t.Helper()
	return &keyDevice{signer: signer, pin: "123456", reported: device.Key{ID: "9a", Public: signer.Public()}}
}

func (d *keyDevice) Info() device.Info {
	return device.Info{ID: "piv-1", Keys: []device.Key{d.reported}}
}

func (d *keyDevice) Sign(_ context.Context, req device.SignRequest) ([]byte, error) {
	d.signed = append(d.signed, req)
	if req.Key != "9a" {
		return nil, hwerr.ErrNotFound
	}
	if string(req.PIN) != d.pin {
		return nil, &hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(2)}
	}
	var opts crypto.SignerOpts = req.Algorithm.Hash()
	if req.Algorithm == device.RSAPSSSHA256 {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	}
	return d.signer.Sign(rand.Reader, req.Digest, opts)
}

// must returns v, and panics (failing the test) on err: for setup that
// does not fail.
func must[V any](v V, err error) V {
	if err != nil {
		panic(err)
	}
	return v
}

// TestProveKey: each key type the backends hold proves possession with the
// algorithm it implies, against the key the device reports or the
// registered one; a device that signs with another key than the registered
// one is a mismatch; the device's own PIN errors come through unchanged.
func TestProveKey(t *testing.T) {
	ctx := context.Background()
	p256 := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	p384 := must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	rsa2048 := must(rsa.GenerateKey(rand.Reader, 2048))
	for _, tc := range []struct {
		name   string
		signer crypto.Signer
		alg    device.SignAlgorithm
		digest int
	}{
		{"P-256", p256, device.ECDSASHA256, 32},
		{"P-384", p384, device.ECDSASHA384, 48},
		{"RSA", rsa2048, device.RSAPKCS1v15SHA256, 32},
	} {
		dev := newKeyDevice(t, tc.signer)
		pk, err := proveKey(ctx, dev, dev.reported, []byte("123456"), nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if pk.ID != "9a" || pk.Public == nil || pk.Certificate != nil || string(pk.PublicDER) != string(must(x509.MarshalPKIXPublicKey(tc.signer.Public()))) {
			t.Errorf("%s: proven key %+v", tc.name, pk)
		}
		if got := dev.signed[0]; got.Algorithm != tc.alg || len(got.Digest) != tc.digest {
			t.Errorf("%s: signed with %s over %d bytes, want %s over %d", tc.name, got.Algorithm, len(got.Digest), tc.alg, tc.digest)
		}
		if _, err := proveKey(ctx, dev, dev.reported, []byte("123456"), tc.signer.Public()); err != nil {
			t.Errorf("%s against the registered key: %v", tc.name, err)
		}
		var wrong *hwerr.PINIncorrect
		if _, err := proveKey(ctx, dev, dev.reported, []byte("654321"), nil); !errors.As(err, &wrong) || wrong.RetriesLeft != hwerr.TriesLeft(2) {
			t.Errorf("%s with a wrong PIN: %v, want the device's PINIncorrect", tc.name, err)
		}
	}

	// An impostor reports the registered public key but holds another.
	impostor := newKeyDevice(t, must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)))
	impostor.reported.Public = p256.Public()
	_, err := proveKey(ctx, impostor, impostor.reported, []byte("123456"), p256.Public())
	wantError[*MismatchError](t, err)
	// A device whose reported key is its own, checked against a registered
	// key it does not hold.
	dev := newKeyDevice(t, p384)
	_, err = proveKey(ctx, dev, dev.reported, []byte("123456"), p256.Public())
	wantError[*MismatchError](t, err)

	// A key type that cannot prove possession never reaches the device.
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ed := newKeyDevice(t, edKey)
	if _, err := proveKey(ctx, ed, ed.reported, []byte("123456"), nil); err == nil || len(ed.signed) != 0 {
		t.Errorf("Ed25519 key: err %v after %d signatures, want an error before any", err, len(ed.signed))
	}
}

// TestProveKeyWithCertificate: a key the device reports with its
// certificate is proven with the key, and the proven key carries the
// certificate as the device parsed it; a key whose public half cannot be
// encoded never reaches the device.
func TestProveKeyWithCertificate(t *testing.T) {
	ctx := context.Background()
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alice"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	cert := must(x509.ParseCertificate(must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key))))
	dev := newKeyDevice(t, key)
	dev.reported.Certificate = cert
	pk, err := proveKey(ctx, dev, dev.reported, []byte("123456"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pk.Certificate != cert || !key.PublicKey.Equal(pk.Public) {
		t.Error("the proven key is not the reported one with its certificate")
	}

	_, err = proveKey(ctx, dev, device.Key{ID: "9a", Public: struct{}{}}, []byte("123456"), nil)
	if err == nil || len(dev.signed) != 1 {
		t.Errorf("a public key of no known type: %v (signatures %d), want an error and no signature", err, len(dev.signed))
	}
}

// TestChallengesDiffer: two challenges are never the same.
func TestChallengesDiffer(t *testing.T) {
	if a, b := must(challengeDigest(crypto.SHA256)), must(challengeDigest(crypto.SHA256)); string(a) == string(b) {
		t.Error("two challenges are equal")
	}
}

// TestDeviceKey: an empty id means 9a, or the only key; otherwise the key
// named.
func TestDeviceKey(t *testing.T) {
	piv := device.Info{ID: "piv-1", Keys: []device.Key{{ID: "9c"}, {ID: "9a"}}}
	token := device.Info{ID: "p11-1", Keys: []device.Key{{ID: "01"}}}
	two := device.Info{ID: "p11-2", Keys: []device.Key{{ID: "01"}, {ID: "02"}}}
	for _, tc := range []struct {
		info device.Info
		id   string
		want string
	}{
		{piv, "", "9a"},
		{piv, "9c", "9c"},
		{token, "", "01"},
		{two, "02", "02"},
	} {
		k, err := deviceKey(tc.info, tc.id)
		if err != nil || k.ID != tc.want {
			t.Errorf("DeviceKey(%s, %q) = %q, %v, want %q", tc.info.ID, tc.id, k.ID, err, tc.want)
		}
	}
	_, err := deviceKey(two, "")
	if e := wantError[*KeyNotFoundError](t, err); e.Key != "" || e.Keys != 2 || e.Authenticator != "p11-2" {
		t.Errorf("ambiguous key: %+v", e)
	}
	_, err = deviceKey(piv, "9d")
	if e := wantError[*KeyNotFoundError](t, err); e.Key != "9d" {
		t.Errorf("missing key: %+v", e)
	}
}
