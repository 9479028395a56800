package piv

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"io"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/emsa"
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
		return emsa.PSSSHA256(digest, pub.(*rsa.PublicKey).N.BitLen()-1, rnd, pssSaltLength(pss, h))
	default:
		return emsa.PKCS1v15SHA256(digest, alg.ChallengeSize())
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
