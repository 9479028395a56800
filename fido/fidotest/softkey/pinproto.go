package softkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// pinProtocol is one PIN/UV auth protocol, CTAP 2.1 §6.5.4.
type pinProtocol interface {
	kdf(z []byte) []byte
	encrypt(key, plain []byte) []byte
	decrypt(key, ct []byte) ([]byte, error)
	authenticate(key, msg []byte) []byte
}

// protocolOne is PIN/UV auth protocol one, CTAP 2.1 §6.5.6.
type protocolOne struct{}

func (protocolOne) kdf(z []byte) []byte {
	h := sha256.Sum256(z)
	return h[:]
}

func (protocolOne) encrypt(key, plain []byte) []byte {
	b, _ := aes.NewCipher(key)
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(b, make([]byte, 16)).CryptBlocks(out, plain)
	return out
}

func (protocolOne) decrypt(key, ct []byte) ([]byte, error) {
	if len(ct) == 0 || len(ct)%16 != 0 {
		return nil, errors.New("bad length")
	}
	b, _ := aes.NewCipher(key)
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, make([]byte, 16)).CryptBlocks(out, ct)
	return out, nil
}

func (protocolOne) authenticate(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)[:16]
}

// protocolTwo is PIN/UV auth protocol two, CTAP 2.1 §6.5.7.
type protocolTwo struct{}

func (protocolTwo) kdf(z []byte) []byte {
	salt := make([]byte, 32)
	hk, _ := hkdf.Key(sha256.New, z, salt, "CTAP2 HMAC key", 32)
	ak, _ := hkdf.Key(sha256.New, z, salt, "CTAP2 AES key", 32)
	return append(hk, ak...)
}

// aesKey returns the AES half of a shared secret, or the whole key when it
// is a 32-byte PIN/UV auth token.
func aesKey(key []byte) []byte {
	if len(key) == 64 {
		return key[32:]
	}
	return key
}

func (protocolTwo) encrypt(key, plain []byte) []byte {
	b, _ := aes.NewCipher(aesKey(key))
	out := make([]byte, 16+len(plain))
	rand.Read(out[:16])
	cipher.NewCBCEncrypter(b, out[:16]).CryptBlocks(out[16:], plain)
	return out
}

func (protocolTwo) decrypt(key, ct []byte) ([]byte, error) {
	if len(ct) < 32 || len(ct)%16 != 0 {
		return nil, errors.New("bad length")
	}
	b, _ := aes.NewCipher(aesKey(key))
	out := make([]byte, len(ct)-16)
	cipher.NewCBCDecrypter(b, ct[:16]).CryptBlocks(out, ct[16:])
	return out, nil
}

func (protocolTwo) authenticate(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key[:32])
	m.Write(msg)
	return m.Sum(nil)
}

// protocolFor returns the implementation for a protocol number.
func protocolFor(n int) pinProtocol {
	switch n {
	case 1:
		return protocolOne{}
	case 2:
		return protocolTwo{}
	}
	return nil
}

// pinState is the authenticator's PIN state, CTAP 2.1 §6.5.2.
type pinState struct {
	hash        []byte // LEFT(SHA-256(PIN), 16); nil when no PIN is set
	retries     int
	consecutive int
	agreement   *ecdh.PrivateKey
	token       []byte
	tokenPerms  int
	tokenRPID   string
}

const maxPINRetries = 8

func newPINState() *pinState {
	s := &pinState{retries: maxPINRetries}
	s.powerCycle()
	return s
}

// powerCycle regenerates the volatile state (§6.5.5.1 initialize).
func (s *pinState) powerCycle() {
	s.consecutive = 0
	s.regenerate()
	s.resetToken()
}

func (s *pinState) regenerate() {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	s.agreement = k
}

func (s *pinState) resetToken() {
	s.token = make([]byte, 32)
	rand.Read(s.token)
	s.tokenPerms, s.tokenRPID = 0, ""
}

// sharedSecret runs ECDH with the platform's key agreement key
// (§6.5.6 decapsulate) and derives the shared secret.
func (s *pinState) sharedSecret(p pinProtocol, pk *coseKey) ([]byte, bool) {
	if pk == nil || pk.Kty != 2 || pk.Crv != 1 || len(pk.X) != 32 || len(pk.Y) != 32 {
		return nil, false
	}
	raw := append(append([]byte{4}, pk.X...), pk.Y...)
	pub, err := ecdh.P256().NewPublicKey(raw)
	if err != nil {
		return nil, false
	}
	z, err := s.agreement.ECDH(pub)
	if err != nil {
		return nil, false
	}
	return p.kdf(z), true
}

// agreementCOSE returns the key agreement public key as a COSE_Key.
func (s *pinState) agreementCOSE() *coseKey {
	b := s.agreement.PublicKey().Bytes()
	return &coseKey{Kty: 2, Alg: algECDH, Crv: 1, X: b[1:33], Y: b[33:65]}
}
