package piv

import (
	"context"
	"crypto"
	"crypto/rsa"
	"io"
)

// Key is a private key in a PIV slot, usable as a crypto.Signer (piv-go's
// piv/key.go is the model). Its calls go to the card through the client;
// verify the PIN first. The public key, which the caller read from the
// slot's certificate and keeps, decides the card algorithm (GENERAL
// AUTHENTICATE's P1) and the padding of RSA signatures.
type Key struct {
	c    *Client
	slot Slot
	pub  crypto.PublicKey
}

var _ crypto.Signer = (*Key)(nil)

// PrivateKey returns the key in slot; pub is the slot's public key (from its
// certificate).
func (c *Client) PrivateKey(slot Slot, pub crypto.PublicKey) *Key {
	return &Key{c: c, slot: slot, pub: pub}
}

// Public returns the key's public key.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Sign implements crypto.Signer with a background context; see SignContext.
func (k *Key) Sign(rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.SignContext(context.Background(), rnd, digest, opts)
}

// SignContext signs digest on the card. opts gives the hash that made
// digest: for ECDSA keys crypto.SHA256 or crypto.SHA384 (the signature is
// ASN.1 DER); for RSA keys crypto.SHA256 gives PKCS #1 v1.5 and
// *rsa.PSSOptions with SHA-256 gives PSS, whose salt is read from rnd
// (PSSSaltLengthAuto and PSSSaltLengthEqualsHash mean as long as the hash).
// Another hash or scheme is hwerr.ErrNotSupported, a digest of the wrong
// length hwerr.ErrInvalidInput. The PIN must have been verified (for slot
// 9C just before).
func (k *Key) SignContext(ctx context.Context, rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	alg, err := KeyAlgOf(k.pub)
	if err != nil {
		return nil, err
	}
	challenge, err := buildChallenge(alg, k.pub, digest, opts, rnd)
	if err != nil {
		return nil, err
	}
	return k.c.generalAuthenticate(ctx, k.slot, alg, challenge)
}

// pssSaltLength is the salt length PSS options ask for, with the automatic
// lengths resolved to the hash's size, which is what cards and verifiers
// expect.
func pssSaltLength(pss *rsa.PSSOptions, h crypto.Hash) int {
	if pss.SaltLength == rsa.PSSSaltLengthAuto || pss.SaltLength == rsa.PSSSaltLengthEqualsHash {
		return h.Size()
	}
	return pss.SaltLength
}
