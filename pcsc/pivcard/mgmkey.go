package pivcard

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"fmt"

	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/tlv"
)

// Key reference and algorithm identifiers of the PIV Card Application
// Administration Key, the "management key" (SP 800-73-4 Part 1 Table 4b,
// SP 800-78-4 Table 6-2).
const (
	keyRefMgm  = 0x9B
	alg3DES    = 0x03 // 3 Key Triple DES – ECB
	algAES128  = 0x08
	algAES192  = 0x0A
	algAES256  = 0x0C
	insSetMgm  = 0xFF // YubiKey's SET MANAGEMENT KEY, which yubico-piv-tool sends
	insGetChal = 0x84 // ISO/IEC 7816-4 §7.5.3 GET CHALLENGE
)

// DefaultMgmKey is the well-known default management key of new PIV cards
// (3DES, 01 02 … 08 three times), as yubico-piv-tool expects it.
var DefaultMgmKey = bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 3)

// mgmKey is the card's management key and its algorithm.
type mgmKey struct {
	Alg byte   `json:"alg"`
	Key []byte `json:"key"`
}

// mgmKeySize returns the key length of a management-key algorithm, or 0.
func mgmKeySize(alg byte) int {
	switch alg {
	case alg3DES:
		return 24
	case algAES128:
		return 16
	case algAES192:
		return 24
	case algAES256:
		return 32
	}
	return 0
}

// block returns the block cipher of the key.
func (k mgmKey) block() (cipher.Block, error) {
	if len(k.Key) != mgmKeySize(k.Alg) {
		return nil, fmt.Errorf("pivcard: management key of %d bytes for algorithm %02X", len(k.Key), k.Alg)
	}
	if k.Alg == alg3DES {
		return des.NewTripleDESCipher(k.Key)
	}
	return aes.NewCipher(k.Key)
}

// mgmAuth is the state of a GENERAL AUTHENTICATE exchange with the
// management key (SP 800-73-4 Part 2 Appendix A.1 and A.2).
type mgmAuth struct {
	witness   []byte // the plain witness sent encrypted, awaiting its decryption
	challenge []byte // the challenge sent in clear, awaiting its encryption
}

// mgmAuthenticate answers GENERAL AUTHENTICATE with the management key in
// its three forms: 7C { 80 00 } asks for an encrypted witness; 7C { 80
// witness, 81 challenge } returns it decrypted with a challenge for the card,
// answered 7C { 82 encrypted challenge } (mutual authentication, as
// yubico-piv-tool does it); 7C { 81 00 } asks for a challenge and 7C { 82
// encrypted challenge } answers it (external authentication).
func (c *Card) mgmAuthenticate(cmd apdu.Command) ([]byte, uint16) {
	pending := c.mgmPending
	c.mgmPending = mgmAuth{}
	p, ok := c.store.(Provisioner)
	if !ok {
		return nil, apdu.SWFuncNotSupported
	}
	alg, key := p.MgmKey()
	if cmd.P1 != alg {
		return nil, apdu.SWIncorrectP1P2
	}
	blk, err := mgmKey{Alg: alg, Key: key}.block()
	if err != nil {
		return nil, apdu.SWConditionsNotMet
	}
	objs, err := tlv.Parse(cmd.Data)
	if err != nil || len(objs) != 1 || objs[0].Tag != piv.TagDynAuth {
		return nil, apdu.SWIncorrectData
	}
	inner, err := tlv.Parse(objs[0].Value)
	if err != nil {
		return nil, apdu.SWIncorrectData
	}
	fields := map[uint32][]byte{}
	for _, o := range inner {
		if _, dup := fields[o.Tag]; dup {
			return nil, apdu.SWIncorrectData
		}
		fields[o.Tag] = o.Value
	}
	bs := blk.BlockSize()
	witness, hasWitness := fields[piv.TagWitness]
	challenge, hasChallenge := fields[piv.TagChallenge]
	response, hasResponse := fields[piv.TagResponse]
	switch {
	case len(fields) == 1 && hasWitness && len(witness) == 0:
		plain, err := randomBytes(bs)
		if err != nil {
			return nil, apdu.SWUnknown
		}
		c.mgmPending.witness = plain
		out := make([]byte, bs)
		blk.Encrypt(out, plain)
		return tlv.Encode(piv.TagDynAuth, tlv.Encode(piv.TagWitness, out)), apdu.SWSuccess
	case len(fields) == 2 && hasWitness && hasChallenge:
		if pending.witness == nil || len(witness) != bs || len(challenge) != bs {
			return nil, apdu.SWIncorrectData
		}
		if subtle.ConstantTimeCompare(witness, pending.witness) != 1 {
			return nil, apdu.SWSecurityStatus
		}
		c.mgmVerified = true
		out := make([]byte, bs)
		blk.Encrypt(out, challenge)
		return tlv.Encode(piv.TagDynAuth, tlv.Encode(piv.TagResponse, out)), apdu.SWSuccess
	case len(fields) == 1 && hasChallenge && len(challenge) == 0:
		plain, err := randomBytes(bs)
		if err != nil {
			return nil, apdu.SWUnknown
		}
		c.mgmPending.challenge = plain
		return tlv.Encode(piv.TagDynAuth, tlv.Encode(piv.TagChallenge, plain)), apdu.SWSuccess
	case len(fields) == 1 && hasResponse:
		if pending.challenge == nil || len(response) != bs {
			return nil, apdu.SWIncorrectData
		}
		want := make([]byte, bs)
		blk.Encrypt(want, pending.challenge)
		if subtle.ConstantTimeCompare(want, response) != 1 {
			return nil, apdu.SWSecurityStatus
		}
		c.mgmVerified = true
		return nil, apdu.SWSuccess
	}
	return nil, apdu.SWIncorrectData
}

// setMgmKey answers YubiKey's SET MANAGEMENT KEY (INS FF, P1 FF, P2 FF or FE,
// data alg 9B length key), which yubico-piv-tool's set-mgm-key sends; it
// needs the current management key authenticated.
func (c *Card) setMgmKey(cmd apdu.Command) uint16 {
	p, ok := c.store.(Provisioner)
	switch {
	case !ok:
		return apdu.SWFuncNotSupported
	case cmd.P1 != 0xFF || (cmd.P2 != 0xFF && cmd.P2 != 0xFE):
		return apdu.SWIncorrectP1P2
	case !c.mgmVerified:
		return apdu.SWSecurityStatus
	}
	d := cmd.Data
	if len(d) < 3 || d[1] != keyRefMgm || int(d[2]) != len(d)-3 || mgmKeySize(d[0]) != len(d)-3 {
		return apdu.SWIncorrectData
	}
	if _, err := (mgmKey{Alg: d[0], Key: d[3:]}).block(); err != nil {
		return apdu.SWIncorrectData
	}
	return p.SetMgmKey(d[0], d[3:])
}

// getChallenge answers GET CHALLENGE (ISO/IEC 7816-4 §7.5.3) with Le random
// bytes (at most 256), 8 when Le is absent.
func (c *Card) getChallenge(cmd apdu.Command) ([]byte, uint16) {
	if cmd.P1 != 0 || cmd.P2 != 0 || len(cmd.Data) != 0 {
		return nil, apdu.SWIncorrectP1P2
	}
	n := min(cmd.Le, apdu.MaxShortLe)
	if n == 0 {
		n = 8
	}
	b, err := randomBytes(n)
	if err != nil {
		return nil, apdu.SWUnknown
	}
	return b, apdu.SWSuccess
}
