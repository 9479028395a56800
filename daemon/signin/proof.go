package signin

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/ipc"
)

// ProvenKey is a key whose possession was just proven.
type ProvenKey struct {
	ID          string
	Public      crypto.PublicKey
	PublicDER   []byte // PKIX
	Certificate []byte // DER, nil when the key has none
}

// proveAlgorithm picks the signing algorithm for a proof with pub.
func proveAlgorithm(pub crypto.PublicKey) (device.SignAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve.Params().BitSize > 256 {
			return device.ECDSASHA384, nil
		}
		return device.ECDSASHA256, nil
	case *rsa.PublicKey:
		return device.RSAPKCS1v15SHA256, nil
	}
	return "", fmt.Errorf("key type %T cannot prove possession", pub)
}

// ChallengeDigest returns the hash of a fresh random challenge.
func ChallengeDigest(h crypto.Hash) ([]byte, error) {
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

// verifySignature checks a signature made by device.Device.Sign.
func verifySignature(pub crypto.PublicKey, alg device.SignAlgorithm, digest, sig []byte) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if ecdsa.VerifyASN1(k, digest, sig) {
			return nil
		}
	case *rsa.PublicKey:
		switch alg {
		case device.RSAPSSSHA256:
			if rsa.VerifyPSS(k, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil {
				return nil
			}
		default:
			if rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil {
				return nil
			}
		}
	}
	return errors.New("the signature does not verify with the key")
}

// DeviceKey finds a key of the device by id; an empty id means the PIV
// authentication key 9a, or the device's only key. It returns a
// *KeyNotFoundError when there is none.
func DeviceKey(info ipc.Authenticator, id string) (ipc.Key, error) {
	for _, k := range info.Keys {
		if k.ID == id || (id == "" && k.ID == "9a") {
			return k, nil
		}
	}
	if id == "" && len(info.Keys) == 1 {
		return info.Keys[0], nil
	}
	return ipc.Key{}, &KeyNotFoundError{Authenticator: info.ID, Key: id, Keys: len(info.Keys)}
}

// parseKey decodes a key's PEM public key and certificate.
func parseKey(k ipc.Key) (ProvenKey, error) {
	out := ProvenKey{ID: k.ID}
	if b, _ := pem.Decode([]byte(k.PublicKey)); b != nil {
		out.PublicDER = b.Bytes
	}
	if b, _ := pem.Decode([]byte(k.Certificate)); b != nil {
		out.Certificate = b.Bytes
	}
	if out.PublicDER == nil && out.Certificate != nil {
		cert, err := x509.ParseCertificate(out.Certificate)
		if err != nil {
			return out, certificateErrorf("key %s: certificate does not parse: %v", k.ID, err)
		}
		out.PublicDER = cert.RawSubjectPublicKeyInfo
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicDER)
	if err != nil {
		return out, fmt.Errorf("key %s: public key does not parse: %w", k.ID, err)
	}
	out.Public = pub
	return out, nil
}

// ProveKey verifies pin on the device and has it sign a fresh challenge with
// key, checked against want (the registered key) or, when want is nil, the
// key the device reports. It returns the key whose possession was proven,
// and a *MismatchError when the signature does not verify.
func ProveKey(ctx context.Context, dev device.Device, key ipc.Key, pin []byte, want crypto.PublicKey) (ProvenKey, error) {
	pk, err := parseKey(key)
	if err != nil {
		return pk, err
	}
	check := pk.Public
	if want != nil {
		check = want
	}
	alg, err := proveAlgorithm(check)
	if err != nil {
		return pk, err
	}
	digest, err := ChallengeDigest(alg.Hash())
	if err != nil {
		return pk, err
	}
	sig, err := dev.Sign(ctx, device.SignRequest{Key: key.ID, Algorithm: alg, Digest: digest, PIN: pin})
	if err != nil {
		return pk, err
	}
	if err := verifySignature(check, alg, digest, sig); err != nil {
		return pk, mismatchErrorf("the authenticator did not prove possession of key %s: %v", key.ID, err)
	}
	return pk, nil
}

// KeyCertificate parses a key's certificate, nil when it has none.
func KeyCertificate(k ipc.Key) (*x509.Certificate, error) {
	pk, err := parseKey(k)
	if err != nil || pk.Certificate == nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(pk.Certificate)
	if err != nil {
		return nil, certificateErrorf("the card's certificate does not parse: %v", err)
	}
	return cert, nil
}
