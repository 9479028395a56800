package signin

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"fmt"

	"github.com/hwauthd/hwauthd/device"
)

// ProvenKey is a key whose possession was just proven.
type ProvenKey struct {
	device.Key
	// PublicDER is the key's public half in PKIX DER, as registrations
	// keep it.
	PublicDER []byte
}

// challengeDigest returns the hash of a fresh random challenge.
func challengeDigest(h crypto.Hash) ([]byte, error) {
	c := make([]byte, 32)
	if _, err := rand.Read(c); err != nil {
		return nil, err
	}
	if h == crypto.SHA384 {
		d := sha512.Sum384(c)
		return d[:], nil
	}
	d := sha256.Sum256(c)
	return d[:], nil
}

// deviceKey finds a key of the device by id; an empty id means the PIV
// authentication key 9a, or the device's only key. It returns a
// *KeyNotFoundError when there is none.
func deviceKey(info device.Info, id string) (device.Key, error) {
	for _, k := range info.Keys {
		if k.ID == id || (id == "" && k.ID == "9a") {
			return k, nil
		}
	}
	if id == "" && len(info.Keys) == 1 {
		return info.Keys[0], nil
	}
	return device.Key{}, &KeyNotFoundError{Authenticator: info.ID, Key: id, Keys: len(info.Keys)}
}

// proveKey verifies pin on the device and has it sign a fresh challenge with
// key, checked against want (the registered key) or, when want is nil, the
// key the device reports. It returns the key whose possession was proven,
// and a *MismatchError when the signature does not verify.
func proveKey(ctx context.Context, dev device.Device, key device.Key, pin []byte, want crypto.PublicKey) (ProvenKey, error) {
	pk := ProvenKey{Key: key}
	der, err := x509.MarshalPKIXPublicKey(key.Public)
	if err != nil {
		return pk, fmt.Errorf("key %s: public key: %w", key.ID, err)
	}
	pk.PublicDER = der
	check := key.Public
	if want != nil {
		check = want
	}
	alg, err := device.SignAlgorithmFor(check)
	if err != nil {
		return pk, err
	}
	digest, err := challengeDigest(alg.Hash())
	if err != nil {
		return pk, err
	}
	sig, err := dev.Sign(ctx, device.SignRequest{Key: key.ID, Algorithm: alg, Digest: digest, PIN: pin})
	if err != nil {
		return pk, err
	}
	if err := alg.Verify(check, digest, sig); err != nil {
		return pk, mismatchErrorf("the authenticator did not prove possession of key %s: %v", key.ID, err)
	}
	return pk, nil
}
