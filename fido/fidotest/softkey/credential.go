package softkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// credential is one credential held by the key (resident or not; the soft key
// keeps all of them in memory instead of wrapping keys into the id).
type credential struct {
	id       []byte
	rpIDHash [32]byte
	user     userEntity
	resident bool
	alg      int
	signer   crypto.Signer
}

// newCredential generates a credential for alg (ES256 or EdDSA).
func newCredential(alg int, rpID string, user userEntity, resident bool) (*credential, error) {
	c := &credential{id: make([]byte, 48), rpIDHash: sha256.Sum256([]byte(rpID)), user: user, resident: resident, alg: alg}
	rand.Read(c.id)
	switch alg {
	case algES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		c.signer = k
	case algEdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		c.signer = k
	default:
		return nil, fmt.Errorf("algorithm %d", alg)
	}
	return c, nil
}

// coseKey returns the credential public key as a COSE_Key.
func (c *credential) coseKey() coseKey {
	switch pub := c.signer.Public().(type) {
	case *ecdsa.PublicKey:
		b, _ := pub.Bytes() // 0x04 || X || Y
		return coseKey{Kty: 2, Alg: algES256, Crv: 1, X: b[1:33], Y: b[33:65]}
	case ed25519.PublicKey:
		return coseKey{Kty: 1, Alg: algEdDSA, Crv: 6, X: []byte(pub)}
	}
	panic("unreachable")
}

// sign signs authData || clientDataHash as WebAuthn §6.3.3 step 11 and
// §6.3.2 describe: ECDSA over SHA-256 in ASN.1 DER, or pure Ed25519.
func (c *credential) sign(authData, clientDataHash []byte) []byte {
	msg := append(append([]byte{}, authData...), clientDataHash...)
	var sig []byte
	var err error
	if c.alg == algES256 {
		h := sha256.Sum256(msg)
		sig, err = c.signer.Sign(rand.Reader, h[:], crypto.SHA256)
	} else {
		sig, err = c.signer.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	if err != nil {
		panic(err)
	}
	return sig
}

// Authenticator data flags, WebAuthn §6.1.
const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

// authData builds authenticator data (WebAuthn §6.1): rpIdHash, flags,
// signCount and, when attested is set, the attested credential data.
func (k *Key) authData(c *credential, flags byte, counter uint32, attested bool) []byte {
	b := append([]byte{}, c.rpIDHash[:]...)
	if attested {
		flags |= flagAT
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint32(b, counter)
	if !attested {
		return b
	}
	b = append(b, k.aaguid[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.id)))
	b = append(b, c.id...)
	ck, err := encMode.Marshal(c.coseKey())
	if err != nil {
		panic(err)
	}
	return append(b, ck...)
}
