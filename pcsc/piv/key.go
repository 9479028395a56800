package piv

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Key is a private key in a PIV slot, usable as a crypto.Signer. Its calls
// go to the card through the client; verify the PIN first.
type Key struct {
	c    *Client
	slot Slot
	pub  crypto.PublicKey
}

var _ crypto.Signer = (*Key)(nil)

// PrivateKey returns the key in slot as a crypto.Signer; pub is the slot's
// public key (from its certificate), which decides the schemes it offers.
func (c *Client) PrivateKey(slot Slot, pub crypto.PublicKey) crypto.Signer {
	return &Key{c: c, slot: slot, pub: pub}
}

// Public returns the key's public key.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Sign implements crypto.Signer with a background context; see SignContext.
func (k *Key) Sign(rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.SignContext(context.Background(), rnd, digest, opts)
}

// SignContext signs digest on the card. opts chooses the scheme: for ECDSA
// keys crypto.SHA256 or crypto.SHA384 (DER signature); for RSA keys
// crypto.SHA256 gives PKCS #1 v1.5 and *rsa.PSSOptions with SHA-256 gives
// PSS, whose salt is read from rnd (PSSSaltLengthAuto and EqualsHash mean as
// long as the hash).
func (k *Key) SignContext(ctx context.Context, rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	keyAlg, err := KeyAlgOf(k.pub)
	if err != nil {
		return nil, err
	}
	alg, saltLen, err := schemeFor(keyAlg, opts)
	if err != nil {
		return nil, err
	}
	return k.c.sign(ctx, k.slot, k.pub, alg, digest, rnd, saltLen)
}

// schemeFor maps crypto.SignerOpts to the API's scheme names.
func schemeFor(keyAlg KeyAlg, opts crypto.SignerOpts) (Algorithm, int, error) {
	if opts == nil {
		return "", 0, fmt.Errorf("piv: sign without a hash: %w", hwerr.ErrNotSupported)
	}
	h := opts.HashFunc()
	switch {
	case keyAlg != KeyAlgRSA2048 && h == crypto.SHA256:
		return ECDSASHA256, 0, nil
	case keyAlg != KeyAlgRSA2048 && h == crypto.SHA384:
		return ECDSASHA384, 0, nil
	case keyAlg == KeyAlgRSA2048 && h == crypto.SHA256:
		pss, ok := opts.(*rsa.PSSOptions)
		if !ok {
			return RSAPKCS1v15SHA256, 0, nil
		}
		salt := pss.SaltLength
		if salt == rsa.PSSSaltLengthAuto || salt == rsa.PSSSaltLengthEqualsHash {
			salt = sha256.Size
		}
		return RSAPSSSHA256, salt, nil
	}
	return "", 0, fmt.Errorf("piv: hash %v with a %s key: %w", h, keyAlg, hwerr.ErrNotSupported)
}
