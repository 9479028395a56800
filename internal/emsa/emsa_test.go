package emsa

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"math/big"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
)

// rawSign is the raw RSA private-key operation a PIV card applies to a
// block.
func rawSign(k *rsa.PrivateKey, em []byte) []byte {
	return new(big.Int).Exp(new(big.Int).SetBytes(em), k.D, k.N).FillBytes(make([]byte, k.Size()))
}

// TestEncodingsVerifyWithCryptoRSA: blocks signed with the raw RSA
// operation verify with crypto/rsa as PKCS #1 v1.5 and PSS signatures, and
// CKM_RSA_PKCS's DigestInfo signed without a hash is the same signature.
func TestEncodingsVerifyWithCryptoRSA(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("hwauthd"))
	em, err := PKCS1v15SHA256(digest[:], k.Size())
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, digest[:], rawSign(k, em)); err != nil {
		t.Errorf("PKCS #1 v1.5: %v", err)
	}
	di, err := DigestInfoSHA256(digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig, err := rsa.SignPKCS1v15(nil, k, crypto.Hash(0), di)
	if err != nil || !bytes.Equal(sig, rawSign(k, em)) {
		t.Errorf("the DigestInfo signed without a hash differs from the encoded block's signature: %v", err)
	}
	for _, salt := range []int{0, sha256.Size, 100} {
		em, err := PSSSHA256(digest[:], k.N.BitLen()-1, rand.Reader, salt)
		if err != nil {
			t.Fatal(err)
		}
		if err := rsa.VerifyPSS(&k.PublicKey, crypto.SHA256, digest[:], rawSign(k, em), &rsa.PSSOptions{SaltLength: salt}); err != nil {
			t.Errorf("PSS with a %d-byte salt: %v", salt, err)
		}
	}
	for name, err := range map[string]error{
		"short DigestInfo digest": second(DigestInfoSHA256(digest[:20])),
		"short block":             second(PKCS1v15SHA256(digest[:], 60)),
		"PSS salt too long":       second(PSSSHA256(digest[:], 2047, rand.Reader, 250)),
		"short PSS digest":        second(PSSSHA256(digest[:31], 2047, rand.Reader, 32)),
	} {
		if !errors.Is(err, hwerr.ErrInvalidInput) {
			t.Errorf("%s: %v, want invalid input", name, err)
		}
	}
}

func second(_ []byte, err error) error { return err }

func TestParsePKCS1v15SHA256(t *testing.T) {
	digest := bytes.Repeat([]byte{0xAB}, 32)
	em, _ := PKCS1v15SHA256(digest, 256)
	if got, ok := ParsePKCS1v15SHA256(em); !ok || !bytes.Equal(got, digest) {
		t.Fatalf("round trip: %X, %v", got, ok)
	}
	for name, bad := range map[string][]byte{
		"short":          em[:40],
		"block type 2":   append([]byte{0, 2}, em[2:]...),
		"padding not FF": append([]byte{0, 1, 0xFE}, em[3:]...),
		"other hash":     append(append([]byte(nil), em[:len(em)-40]...), append([]byte{0x02}, em[len(em)-39:]...)...),
	} {
		if _, ok := ParsePKCS1v15SHA256(bad); ok {
			t.Errorf("%s accepted", name)
		}
	}
}

// FuzzParsePKCS1v15SHA256 checks that the block parser never panics and
// that whatever it accepts is the block PKCS1v15SHA256 builds for it.
func FuzzParsePKCS1v15SHA256(f *testing.F) {
	seed, _ := PKCS1v15SHA256(bytes.Repeat([]byte{1}, 32), 256)
	f.Add(seed)
	f.Add([]byte{0, 1, 0xFF, 0})
	f.Fuzz(func(t *testing.T, em []byte) {
		digest, ok := ParsePKCS1v15SHA256(em)
		if !ok {
			return
		}
		if again, err := PKCS1v15SHA256(digest, len(em)); err != nil || !bytes.Equal(again, em) {
			t.Fatalf("accepted %X, which is not the block of its digest", em)
		}
	})
}
