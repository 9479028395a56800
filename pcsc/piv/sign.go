package piv

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/tlv"
)

// KeyAlgOf returns the PIV algorithm of a public key: P-256, P-384 or
// RSA-2048; other keys are hwerr.ErrNotSupported.
func KeyAlgOf(pub crypto.PublicKey) (KeyAlg, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return KeyAlgP256, nil
		case elliptic.P384():
			return KeyAlgP384, nil
		}
	case *rsa.PublicKey:
		if k.N.BitLen() == 2048 {
			return KeyAlgRSA2048, nil
		}
	}
	return 0, fmt.Errorf("piv: key type %T: %w", pub, hwerr.ErrNotSupported)
}

// buildChallenge checks the hash and the digest for a key of the card
// algorithm alg and returns what the card must sign: the digest fitted to
// the curve for ECDSA, the encoded message of PKCS #1 v1.5 or PSS for RSA,
// since the card's RSA operation is the raw private-key operation.
func buildChallenge(alg KeyAlg, pub crypto.PublicKey, digest []byte, opts crypto.SignerOpts, rnd io.Reader) ([]byte, error) {
	if opts == nil {
		return nil, fmt.Errorf("piv: sign without a hash: %w", hwerr.ErrNotSupported)
	}
	h := opts.HashFunc()
	pss, isPSS := opts.(*rsa.PSSOptions)
	switch {
	case alg != KeyAlgRSA2048 && isPSS:
		return nil, fmt.Errorf("piv: PSS with a %s key: %w", alg, hwerr.ErrNotSupported)
	case alg == KeyAlgRSA2048 && h != crypto.SHA256,
		alg != KeyAlgRSA2048 && h != crypto.SHA256 && h != crypto.SHA384:
		return nil, fmt.Errorf("piv: hash %v with a %s key: %w", h, alg, hwerr.ErrNotSupported)
	case len(digest) != h.Size():
		return nil, fmt.Errorf("piv: a %v digest is %d bytes, got %d: %w", h, h.Size(), len(digest), hwerr.ErrInvalidInput)
	case alg != KeyAlgRSA2048:
		return ecdsaChallenge(digest, alg.ChallengeSize()), nil
	case isPSS:
		return emsaPSSSHA256(digest, pub.(*rsa.PublicKey).N.BitLen()-1, rnd, pssSaltLength(pss, h))
	default:
		return pkcs1v15SHA256(digest, alg.ChallengeSize()), nil
	}
}

// ecdsaChallenge fits a digest to the curve size: ECDSA uses the leftmost
// bits of the hash (FIPS 186-4 §6.4), so a longer digest is truncated and a
// shorter one left-padded with zeros, which keeps its integer value.
func ecdsaChallenge(digest []byte, size int) []byte {
	if len(digest) >= size {
		return digest[:size]
	}
	out := make([]byte, size)
	copy(out[size-len(digest):], digest)
	return out
}

// sha256DigestInfo is the DER prefix of a SHA-256 DigestInfo (RFC 8017
// §9.2, note 1).
var sha256DigestInfo = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// pkcs1v15SHA256 builds EMSA-PKCS1-v1_5 (RFC 8017 §9.2): 00 01 FF… 00
// DigestInfo, k bytes long.
func pkcs1v15SHA256(digest []byte, k int) []byte {
	em := make([]byte, k)
	em[1] = 0x01
	tLen := len(sha256DigestInfo) + len(digest)
	for i := 2; i < k-tLen-1; i++ {
		em[i] = 0xFF
	}
	copy(em[k-tLen:], sha256DigestInfo)
	copy(em[k-len(digest):], digest)
	return em
}

// ParsePKCS1v15SHA256 takes the digest out of an EMSA-PKCS1-v1_5 block
// 00 01 FF… 00 DigestInfo over SHA-256 (RFC 8017 §9.2), as pkcs1v15SHA256
// builds it; ok is false for any other block.
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

// emsaPSSSHA256 builds EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with SHA-256 and
// MGF1-SHA-256 and a random salt of saltLen bytes.
func emsaPSSSHA256(mHash []byte, emBits int, rnd io.Reader, saltLen int) ([]byte, error) {
	const hLen = sha256.Size
	emLen := (emBits + 7) / 8
	if saltLen < 0 || emLen < hLen+saltLen+2 {
		return nil, fmt.Errorf("piv: PSS salt of %d bytes does not fit: %w", saltLen, hwerr.ErrInvalidInput)
	}
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return nil, fmt.Errorf("piv: PSS salt: %w", err)
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

// generalAuthenticate sends GENERAL AUTHENTICATE (SP 800-73-4 Part 2
// §3.2.4) 00 87 alg slot 7C { 82 00, 81 challenge } and returns the
// response of 7C { 82 … }.
func (c *Client) generalAuthenticate(ctx context.Context, slot Slot, alg KeyAlg, challenge []byte) ([]byte, error) {
	data := tlv.Encode(TagDynAuth, tlv.Encode(TagResponse, nil), tlv.Encode(TagChallenge, challenge))
	cmd := apdu.Command{INS: InsGeneralAuthenticate, P1: byte(alg), P2: byte(slot), Data: data, Le: 256}
	resp, err := c.exchange(ctx, fmt.Sprintf("sign with %s", slot), cmd)
	if err != nil {
		return nil, err
	}
	tmpl, err := tlv.Find(resp.Data, TagDynAuth)
	if err != nil {
		return nil, fmt.Errorf("piv: sign with %s: %w", slot, protocolErr(err))
	}
	sig, err := tlv.Find(tmpl, TagResponse)
	if err != nil {
		return nil, fmt.Errorf("piv: sign with %s: %w", slot, protocolErr(err))
	}
	return sig, nil
}
