package pivcard

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"math/big"

	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
)

// Label implements Store.
func (s *softStore) Label() string { return s.st.Label }

// Object implements Store: objects written with PUT DATA first, then the
// CHUID and the certificates the card was made with.
func (s *softStore) Object(tag uint32) []byte {
	if v, ok := s.st.Objects[tag]; ok {
		if len(v) == 0 {
			return nil
		}
		return v
	}
	if tag == piv.TagCHUID {
		return CHUIDContent(s.st.FASCN, s.st.GUID, s.st.Expiry)
	}
	for _, k := range s.st.Slots {
		if k.Slot.ObjectTag() == tag && len(k.Cert) > 0 {
			return CertificateContent(k.Cert)
		}
	}
	return nil
}

// Key implements Store.
func (s *softStore) Key(slot piv.Slot) (piv.KeyAlg, bool) {
	if k := s.slot(slot); k != nil {
		return k.Alg, true
	}
	return 0, false
}

// slot returns the key in the slot, or nil.
func (s *softStore) slot(slot piv.Slot) *slotKey {
	for i := range s.st.Slots {
		if s.st.Slots[i].Slot == slot {
			return &s.st.Slots[i]
		}
	}
	return nil
}

// errBadChallenge is a challenge the key cannot take (RSA: not below n).
var errBadChallenge = errors.New("pivcard: challenge out of range for the key")

// Sign implements Store: ECDSA over the challenge, or the raw RSA
// private-key operation on the block the client padded.
func (s *softStore) Sign(slot piv.Slot, challenge, _ []byte) ([]byte, error) {
	k := s.slot(slot)
	if k == nil {
		return nil, errBadChallenge
	}
	switch key := k.Key.(type) {
	case *ecdsa.PrivateKey:
		return ecdsa.SignASN1(rand.Reader, key, challenge)
	case *rsa.PrivateKey:
		return rawRSA(key, challenge)
	}
	return nil, errBadChallenge
}

// rawRSA computes challenge^d mod n, refusing a challenge not below n.
func rawRSA(k *rsa.PrivateKey, challenge []byte) ([]byte, error) {
	m := new(big.Int).SetBytes(challenge)
	if m.Cmp(k.N) >= 0 {
		return nil, errBadChallenge
	}
	out := make([]byte, k.Size())
	return new(big.Int).Exp(m, k.D, k.N).FillBytes(out), nil
}

// hashSecret returns the salted hash of a padded PIN or PUK.
func (s *softStore) hashSecret(padded []byte) []byte {
	h := sha256.New()
	h.Write(s.st.Salt)
	h.Write(padded)
	return h.Sum(nil)
}

// check compares a padded value with sec, counting a failure down (SP
// 800-73-4 Part 2 §3.2.1) and restoring the counter on success. It returns
// 9000, 63Cx or 6983, or 6581 when the new counter cannot be saved.
func (s *softStore) check(sec *secret, padded []byte) uint16 {
	if sec.Left <= 0 {
		return apdu.SWAuthBlocked
	}
	if subtle.ConstantTimeCompare(s.hashSecret(padded), sec.Hash) == 1 {
		if sec.Left == sec.Max {
			return apdu.SWSuccess
		}
		sec.Left = sec.Max
		return s.persist(apdu.SWSuccess)
	}
	sec.Left--
	return s.persist(apdu.SWVerifyFail | uint16(min(sec.Left, 15)))
}

// VerifyPIN implements Store.
func (s *softStore) VerifyPIN(pin []byte) uint16 { return s.check(&s.st.PIN, pin) }

// PINTriesLeft implements Store.
func (s *softStore) PINTriesLeft() int { return s.st.PIN.Left }

// ChangeReference implements Store.
func (s *softStore) ChangeReference(ref byte, oldValue, newValue []byte) uint16 {
	sec := &s.st.PIN
	if ref == piv.KeyRefPUK {
		sec = &s.st.PUK
	}
	if sw := s.check(sec, oldValue); sw != apdu.SWSuccess {
		return sw
	}
	if !validPadded(newValue) {
		return apdu.SWIncorrectData
	}
	sec.Hash = s.hashSecret(newValue)
	return s.persist(apdu.SWSuccess)
}

// ResetRetryCounter implements Store.
func (s *softStore) ResetRetryCounter(puk, newPIN []byte) uint16 {
	if sw := s.check(&s.st.PUK, puk); sw != apdu.SWSuccess {
		return sw
	}
	if !validPadded(newPIN) {
		return apdu.SWIncorrectData
	}
	s.st.PIN.Hash = s.hashSecret(newPIN)
	s.st.PIN.Left = s.st.PIN.Max
	return s.persist(apdu.SWSuccess)
}

// MgmKey implements Provisioner.
func (s *softStore) MgmKey() (byte, []byte) { return s.st.Mgm.Alg, s.st.Mgm.Key }

// SetMgmKey implements Provisioner.
func (s *softStore) SetMgmKey(alg byte, key []byte) uint16 {
	clear(s.st.Mgm.Key)
	s.st.Mgm = mgmKey{Alg: alg, Key: bytes.Clone(key)}
	return s.persist(apdu.SWSuccess)
}

// Generate implements Provisioner. The slot's certificate stays until PUT
// DATA replaces it, as on real cards.
func (s *softStore) Generate(slot piv.Slot, alg piv.KeyAlg) (crypto.PublicKey, uint16) {
	key, err := generateKey(alg)
	if err != nil {
		return nil, apdu.SWUnknown
	}
	if k := s.slot(slot); k != nil {
		k.Alg, k.Key = alg, key
	} else {
		s.st.Slots = append(s.st.Slots, slotKey{Slot: slot, Alg: alg, Key: key})
	}
	return key.Public(), s.persist(apdu.SWSuccess)
}

// PutObject implements Provisioner.
func (s *softStore) PutObject(tag uint32, content []byte) uint16 {
	if s.st.Objects == nil {
		s.st.Objects = map[uint32][]byte{}
	}
	s.st.Objects[tag] = bytes.Clone(content)
	return s.persist(apdu.SWSuccess)
}

// persist saves the state when the card has a state file and returns sw, or
// 6581 (memory failure) when saving fails, as a card whose EEPROM write
// failed would.
func (s *softStore) persist(sw uint16) uint16 {
	if s.path == "" {
		return sw
	}
	if err := s.save(s.path); err != nil {
		return apdu.SWMemoryFailure
	}
	return sw
}
