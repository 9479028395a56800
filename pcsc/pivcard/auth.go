package pivcard

import (
	"errors"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/tlv"
)

// generalAuthenticate implements GENERAL AUTHENTICATE (SP 800-73-4 Part 2
// §3.2.4) for signing: P1 the algorithm, P2 the slot, data 7C { 82 00,
// 81 challenge }, answer 7C { 82 signature }. ECDSA answers DER; RSA is the
// raw private-key operation on the challenge, padded by the client.
func (c *Card) generalAuthenticate(cmd apdu.Command) ([]byte, uint16) {
	slot := piv.Slot(cmd.P2)
	alg, ok := c.store.Key(slot)
	if !ok || alg != piv.KeyAlg(cmd.P1) {
		return nil, apdu.SWIncorrectP1P2
	}
	if sw := c.authorize(slot); sw != apdu.SWSuccess {
		return nil, sw
	}
	challenge, ok := parseChallenge(cmd.Data)
	if !ok {
		return nil, apdu.SWIncorrectData
	}
	if challenge, ok = fitChallenge(alg, challenge); !ok {
		return nil, apdu.SWIncorrectData
	}
	var pin []byte
	if slot.NeedsPIN() {
		pin = c.pin
	}
	sig, err := c.store.Sign(slot, challenge, pin)
	var wrong *hwerr.PINIncorrect
	switch {
	case errors.Is(err, hwerr.ErrPINRequired), errors.Is(err, hwerr.ErrPINBlocked), errors.As(err, &wrong):
		// The store no longer takes the PIN verified in this session (it
		// was changed or blocked elsewhere): the session is logged out.
		c.dropPINLocked()
		return nil, apdu.SWSecurityStatus
	case err != nil:
		return nil, apdu.SWIncorrectData
	}
	if slot.PINAlways() {
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
