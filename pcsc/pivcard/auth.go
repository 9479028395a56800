package pivcard

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"math/big"

	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/tlv"
)

// generalAuthenticate implements GENERAL AUTHENTICATE (SP 800-73-4 Part 2
// §3.2.4) for signing: P1 the algorithm, P2 the slot, data 7C { 82 00,
// 81 challenge }, answer 7C { 82 signature }. ECDSA answers DER; RSA is the
// raw private-key operation on the challenge, padded by the client.
func (c *Card) generalAuthenticate(cmd apdu.Command) ([]byte, uint16) {
	s := c.slot(piv.Slot(cmd.P2))
	if s == nil || s.Alg != piv.KeyAlg(cmd.P1) {
		return nil, apdu.SWIncorrectP1P2
	}
	if sw := c.authorize(s.Slot); sw != apdu.SWSuccess {
		return nil, sw
	}
	challenge, ok := parseChallenge(cmd.Data)
	if !ok {
		return nil, apdu.SWIncorrectData
	}
	if challenge, ok = fitChallenge(s.Alg, challenge); !ok {
		return nil, apdu.SWIncorrectData
	}
	sig, ok := sign(s, challenge)
	if !ok {
		return nil, apdu.SWIncorrectData
	}
	if s.Slot.PINAlways() {
		c.justVerified = false
	}
	return tlv.Encode(piv.TagDynAuth, tlv.Encode(piv.TagResponse, sig)), apdu.SWSuccess
}

// fitChallenge checks the challenge's length: an RSA challenge is exactly
// the modulus size; an ECDSA one at most the curve size, and a shorter one
// (a SHA-256 digest for a P-384 key) is left-padded with zeros, which keeps
// its value, as SP 800-73-4 cards and OpenSC's p11test expect.
func fitChallenge(alg piv.KeyAlg, challenge []byte) ([]byte, bool) {
	size := alg.ChallengeSize()
	switch {
	case len(challenge) == size:
		return challenge, true
	case alg == piv.KeyAlgRSA2048, len(challenge) > size, len(challenge) == 0:
		return nil, false
	}
	out := make([]byte, size)
	copy(out[size-len(challenge):], challenge)
	return out, true
}

// authorize checks the security status the slot's key needs: none for Card
// Authentication, a verified PIN for the others, verified just before for
// the PIN-always Digital Signature key.
func (c *Card) authorize(slot piv.Slot) uint16 {
	switch {
	case !slot.NeedsPIN():
		return apdu.SWSuccess
	case !c.verified, slot.PINAlways() && !c.justVerified:
		return apdu.SWSecurityStatus
	default:
		return apdu.SWSuccess
	}
}

// parseChallenge extracts the challenge from 7C { 82 00, 81 challenge } in
// either order.
func parseChallenge(data []byte) ([]byte, bool) {
	objs, err := tlv.Parse(data)
	if err != nil || len(objs) != 1 || objs[0].Tag != piv.TagDynAuth {
		return nil, false
	}
	inner, err := tlv.Parse(objs[0].Value)
	if err != nil || len(inner) != 2 {
		return nil, false
	}
	var challenge []byte
	var response bool
	for _, o := range inner {
		switch {
		case o.Tag == piv.TagChallenge:
			challenge = o.Value
		case o.Tag == piv.TagResponse && len(o.Value) == 0:
			response = true
		}
	}
	return challenge, challenge != nil && response
}

// sign runs the slot key's private operation on the challenge.
func sign(s *slotKey, challenge []byte) ([]byte, bool) {
	switch k := s.Key.(type) {
	case *ecdsa.PrivateKey:
		sig, err := ecdsa.SignASN1(rand.Reader, k, challenge)
		return sig, err == nil
	case *rsa.PrivateKey:
		return rawRSA(k, challenge)
	}
	return nil, false
}

// rawRSA computes challenge^d mod n, refusing a challenge not below n.
func rawRSA(k *rsa.PrivateKey, challenge []byte) ([]byte, bool) {
	m := new(big.Int).SetBytes(challenge)
	if m.Cmp(k.N) >= 0 {
		return nil, false
	}
	out := make([]byte, k.Size())
	return new(big.Int).Exp(m, k.D, k.N).FillBytes(out), true
}

// slot returns the key in the slot, or nil.
func (c *Card) slot(slot piv.Slot) *slotKey {
	for i := range c.st.Slots {
		if c.st.Slots[i].Slot == slot {
			return &c.st.Slots[i]
		}
	}
	return nil
}
