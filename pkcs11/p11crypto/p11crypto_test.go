package p11crypto

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"testing"
)

func ecAttrs(t testing.TB, curve elliptic.Curve) (*ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	oid := oidP256
	if curve == elliptic.P384() {
		oid = oidP384
	}
	params, _ := asn1.Marshal(oid)
	raw, _ := k.PublicKey.Bytes()
	point, _ := asn1.Marshal(raw)
	return k, params, point
}

func TestECPublicKey(t *testing.T) {
	for _, tc := range []struct {
		curve elliptic.Curve
		alg   string
	}{{elliptic.P256(), "ecc-p256"}, {elliptic.P384(), "ecc-p384"}} {
		k, params, point := ecAttrs(t, tc.curve)
		pub, err := ECPublicKey(params, point)
		if err != nil {
			t.Fatalf("%s: %v", tc.alg, err)
		}
		if !pub.Equal(&k.PublicKey) {
			t.Errorf("%s: wrapped point gives another key", tc.alg)
		}
		bare, _ := k.PublicKey.Bytes()
		pub, err = ECPublicKey(params, bare)
		if err != nil || !pub.Equal(&k.PublicKey) {
			t.Errorf("%s: bare point: %v", tc.alg, err)
		}
	}
	_, params, point := ecAttrs(t, elliptic.P256())
	point[len(point)-1] ^= 1 // off the curve
	if _, err := ECPublicKey(params, point); err == nil {
		t.Error("a point off the curve was accepted")
	}
	p521, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 132, 0, 35})
	if _, err := ECPublicKey(p521, point); err == nil {
		t.Error("P-521 was accepted")
	}
}

func TestRSAPublicKey(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := RSAPublicKey(k.N.Bytes(), big.NewInt(int64(k.E)).Bytes())
	if err != nil || !pub.Equal(&k.PublicKey) {
		t.Fatalf("RSAPublicKey: %v", err)
	}
	if _, err := RSAPublicKey([]byte{0x0f}, []byte{3}); err == nil {
		t.Error("a tiny modulus was accepted")
	}
}

func TestECDSASignatureDER(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("hwauthd"))
	r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	s.FillBytes(raw[32:])
	der, err := ECDSASignatureDER(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(&k.PublicKey, digest[:], der) {
		t.Error("converted signature does not verify")
	}
	for _, bad := range [][]byte{nil, {1}, make([]byte, 64), make([]byte, 200)} {
		if _, err := ECDSASignatureDER(bad); err == nil {
			t.Errorf("%d-byte signature accepted", len(bad))
		}
	}
}

func FuzzECPublicKey(f *testing.F) {
	_, params, point := ecAttrs(f, elliptic.P256())
	f.Add(params, point)
	_, params, point = ecAttrs(f, elliptic.P384())
	f.Add(params, point)
	f.Add([]byte{6, 0}, []byte{4, 0})
	f.Fuzz(func(t *testing.T, params, point []byte) {
		pub, err := ECPublicKey(params, point)
		if err != nil {
			return
		}
		raw, err := pub.Bytes()
		if err != nil {
			t.Fatalf("accepted key does not encode: %v", err)
		}
		if _, err := ecdsa.ParseUncompressedPublicKey(pub.Curve, raw); err != nil {
			t.Fatalf("accepted a point off the curve: %v", err)
		}
	})
}

func FuzzECDSASignatureDER(f *testing.F) {
	f.Add(make([]byte, 64))
	f.Add(append([]byte{1}, make([]byte, 95)...))
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		der, err := ECDSASignatureDER(raw)
		if err != nil {
			return
		}
		var sig struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) != 0 {
			t.Fatalf("output does not parse: %v", err)
		}
		half := len(raw) / 2
		if sig.R.Cmp(new(big.Int).SetBytes(raw[:half])) != 0 || sig.S.Cmp(new(big.Int).SetBytes(raw[half:])) != 0 {
			t.Fatal("round trip changed r or s")
		}
	})
}

func FuzzRSAPublicKey(f *testing.F) {
	k, _ := rsa.GenerateKey(rand.Reader, 1024)
	f.Add(k.N.Bytes(), []byte{1, 0, 1})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, n, e []byte) {
		pub, err := RSAPublicKey(n, e)
		if err == nil && (pub.N.BitLen() < 1024 || pub.E < 3) {
			t.Fatal("accepted a weak key")
		}
	})
}
