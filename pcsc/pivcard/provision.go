package pivcard

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"math/big"

	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/tlv"
)

// Instructions and tags of card provisioning (SP 800-73-4 Part 2 §3.3).
const (
	insPutData     = 0xDB   // §3.3.2 PUT DATA
	insGenerate    = 0x47   // §3.3.2 GENERATE ASYMMETRIC KEY PAIR
	tagCRT         = 0xAC   // control reference template of GENERATE
	tagAlgorithm   = 0x80   // its algorithm reference
	tagPINPolicy   = 0xAA   // YubiKey PIN policy, accepted and ignored
	tagTouchPolicy = 0xAB   // YubiKey touch policy, accepted and ignored
	tagPublicKey   = 0x7F49 // the public key template GENERATE answers
	maxObjectSize  = 3052   // the largest data object the card stores
)

// writable reports whether PUT DATA may write the object: the PIV data
// objects 5FC101 to 5FC123 (SP 800-73-4 Part 1 Table 3) and the vendor range
// 5FFF00 to 5FFF15 in which yubico-piv-tool keeps its metadata. The
// Discovery object is fixed.
func writable(tag uint32) bool {
	return (tag >= 0x5FC101 && tag <= 0x5FC123) || (tag >= 0x5FFF00 && tag <= 0x5FFF15)
}

// putData answers PUT DATA (SP 800-73-4 Part 2 §3.3.1): P1P2 3FFF, data
// 5C { tag } 53 { content }; an empty content deletes the object. It needs
// the management key authenticated.
func (c *Card) putData(cmd apdu.Command) uint16 {
	p, ok := c.store.(Provisioner)
	switch {
	case !ok:
		return apdu.SWFuncNotSupported
	case cmd.P1 != 0x3F || cmd.P2 != 0xFF:
		return apdu.SWIncorrectP1P2
	case !c.mgmVerified:
		return apdu.SWSecurityStatus
	}
	objs, err := tlv.Parse(cmd.Data)
	if err != nil || len(objs) != 2 || objs[0].Tag != piv.TagTagList || objs[1].Tag != piv.TagData ||
		len(objs[0].Value) != 3 {
		return apdu.SWIncorrectData
	}
	tag := uint32(objs[0].Value[0])<<16 | uint32(objs[0].Value[1])<<8 | uint32(objs[0].Value[2])
	if !writable(tag) {
		return apdu.SWFileNotFound
	}
	if len(objs[1].Value) > maxObjectSize {
		return apdu.SWNotEnoughMemory
	}
	return p.PutObject(tag, objs[1].Value)
}

// generate answers GENERATE ASYMMETRIC KEY PAIR (SP 800-73-4 Part 2
// §3.3.2): P2 the slot, data AC { 80 algorithm }, answer 7F49 { 81 modulus,
// 82 exponent } or 7F49 { 86 point }. The new key replaces the slot's key.
// It needs the management key authenticated.
func (c *Card) generate(cmd apdu.Command) ([]byte, uint16) {
	p, ok := c.store.(Provisioner)
	switch {
	case !ok:
		return nil, apdu.SWFuncNotSupported
	case cmd.P1 != 0x00 || piv.Slot(cmd.P2).ObjectTag() == 0:
		return nil, apdu.SWIncorrectP1P2
	case !c.mgmVerified:
		return nil, apdu.SWSecurityStatus
	}
	alg, ok := generateAlg(cmd.Data)
	if !ok {
		return nil, apdu.SWIncorrectData
	}
	pub, sw := p.Generate(piv.Slot(cmd.P2), alg)
	if sw != apdu.SWSuccess {
		return nil, sw
	}
	return publicKeyTemplate(pub), apdu.SWSuccess
}

// generateAlg reads the algorithm from GENERATE's control reference
// template, accepting YubiKey's PIN and touch policies beside it.
func generateAlg(data []byte) (piv.KeyAlg, bool) {
	objs, err := tlv.Parse(data)
	if err != nil || len(objs) != 1 || objs[0].Tag != tagCRT {
		return 0, false
	}
	inner, err := tlv.Parse(objs[0].Value)
	if err != nil {
		return 0, false
	}
	var alg piv.KeyAlg
	for _, o := range inner {
		switch {
		case o.Tag == tagAlgorithm && len(o.Value) == 1 && alg == 0:
			alg = piv.KeyAlg(o.Value[0])
		case (o.Tag == tagPINPolicy || o.Tag == tagTouchPolicy) && len(o.Value) == 1:
		default:
			return 0, false
		}
	}
	return alg, alg.ChallengeSize() != 0
}

// publicKeyTemplate encodes a public key as GENERATE answers it (SP 800-73-4
// Part 2 Table 11).
func publicKeyTemplate(pub any) []byte {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		point, err := k.Bytes()
		if err != nil {
			return nil
		}
		return tlv.Encode(tagPublicKey, tlv.Encode(0x86, point))
	case *rsa.PublicKey:
		return tlv.Encode(tagPublicKey, tlv.Encode(0x81, k.N.Bytes()), tlv.Encode(0x82, big.NewInt(int64(k.E)).Bytes()))
	}
	return nil
}
