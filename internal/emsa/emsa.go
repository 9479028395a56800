// Package emsa builds and reads the RSA signature encodings of RFC 8017 §9
// (PKCS #1 v2.2) over SHA-256: EMSA-PKCS1-v1_5 with its DigestInfo, and
// EMSA-PSS with MGF1. A device whose RSA operation is the raw private-key
// operation (a PIV card) signs these blocks, PKCS#11's CKM_RSA_PKCS signs
// the DigestInfo, and a card applet in front of a key that signs with a
// scheme (a TPM) reads the digest back out. crypto/rsa keeps them to
// itself.
package emsa

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/hwauthd/hwauthd/hwerr"
)

// sha256DigestInfo is the DER prefix of a SHA-256 DigestInfo (RFC 8017
// §9.2, note 1).
var sha256DigestInfo = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// DigestInfoSHA256 returns the DER DigestInfo of a SHA-256 digest.
func DigestInfoSHA256(digest []byte) ([]byte, error) {
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("emsa: SHA-256 digest of %d bytes: %w", len(digest), hwerr.ErrInvalidInput)
	}
	return append(bytes.Clone(sha256DigestInfo), digest...), nil
}

// PKCS1v15SHA256 builds EMSA-PKCS1-v1_5 (RFC 8017 §9.2) of a SHA-256
// digest, k bytes long: 00 01 FF… 00 DigestInfo.
func PKCS1v15SHA256(digest []byte, k int) ([]byte, error) {
	t, err := DigestInfoSHA256(digest)
	if err != nil {
		return nil, err
	}
	if k < len(t)+11 {
		return nil, fmt.Errorf("emsa: a %d-byte modulus is too short: %w", k, hwerr.ErrInvalidInput)
	}
	em := make([]byte, k)
	em[1] = 0x01
	for i := 2; i < k-len(t)-1; i++ {
		em[i] = 0xFF
	}
	copy(em[k-len(t):], t)
	return em, nil
}

// ParsePKCS1v15SHA256 takes the digest out of a block PKCS1v15SHA256
// builds; ok is false for any other block.
func ParsePKCS1v15SHA256(em []byte) (digest []byte, ok bool) {
	tLen := len(sha256DigestInfo) + sha256.Size
	if len(em) < tLen+11 || em[0] != 0 || em[1] != 1 || em[len(em)-tLen-1] != 0 {
		return nil, false
	}
	for _, b := range em[2 : len(em)-tLen-1] {
		if b != 0xFF {
			return nil, false
		}
	}
	t := em[len(em)-tLen:]
	if !bytes.Equal(t[:len(sha256DigestInfo)], sha256DigestInfo) {
		return nil, false
	}
	return t[len(sha256DigestInfo):], true
}

// PSSSHA256 builds EMSA-PSS-ENCODE (RFC 8017 §9.1.1) of the SHA-256 digest
// mHash with MGF1-SHA-256 and a salt of saltLen bytes read from rnd, for a
// modulus of emBits+1 bits.
func PSSSHA256(mHash []byte, emBits int, rnd io.Reader, saltLen int) ([]byte, error) {
	const hLen = sha256.Size
	emLen := (emBits + 7) / 8
	if len(mHash) != hLen {
		return nil, fmt.Errorf("emsa: SHA-256 digest of %d bytes: %w", len(mHash), hwerr.ErrInvalidInput)
	}
	if saltLen < 0 || emLen < hLen+saltLen+2 {
		return nil, fmt.Errorf("emsa: PSS salt of %d bytes does not fit: %w", saltLen, hwerr.ErrInvalidInput)
	}
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return nil, fmt.Errorf("emsa: PSS salt: %w", err)
	}
	h := sha256.New()
	h.Write(make([]byte, 8))
	h.Write(mHash)
	h.Write(salt)
	hash := h.Sum(nil)
	db := make([]byte, emLen-hLen-1)
	db[len(db)-saltLen-1] = 0x01
	copy(db[len(db)-saltLen:], salt)
	mgf1XOR(db, hash)
	db[0] &= 0xFF >> (8*emLen - emBits)
	em := append(db, hash...)
	return append(em, 0xBC), nil
}

// mgf1XOR XORs out with MGF1-SHA-256(seed) (RFC 8017 §B.2.1).
func mgf1XOR(out, seed []byte) {
	var counter [4]byte
	for done := 0; done < len(out); {
		h := sha256.New()
		h.Write(seed)
		h.Write(counter[:])
		for _, b := range h.Sum(nil) {
			if done == len(out) {
				break
			}
			out[done] ^= b
			done++
		}
		for i := 3; i >= 0; i-- {
			if counter[i]++; counter[i] != 0 {
				break
			}
		}
	}
}
