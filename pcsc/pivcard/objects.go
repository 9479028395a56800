package pivcard

import (
	"bytes"

	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/tlv"
)

// pinUsagePolicy is the Discovery object's PIN usage policy (SP 800-73-4
// Part 1 §3.3.2): 40 = PIV Card Application PIN only, 00 = no global PIN.
var pinUsagePolicy = []byte{0x40, 0x00}

// selectApp answers SELECT (SP 800-73-4 Part 2 §3.1.1) for the full or the
// partial AID of the PIV application with its application property
// template; any other application is absent.
func (c *Card) selectApp(cmd apdu.Command) ([]byte, uint16) {
	if cmd.P1 != 0x04 || cmd.P2 != 0x00 {
		return nil, apdu.SWIncorrectP1P2
	}
	if len(cmd.Data) < piv.RIDLength || !bytes.HasPrefix(piv.AID, cmd.Data) {
		return nil, apdu.SWFileNotFound
	}
	return c.appPropertyTemplate(), apdu.SWSuccess
}

// appPropertyTemplate builds 61 { 4F PIX, 79 { 4F AID }, 50 label, AC
// algorithms } (SP 800-73-4 Part 2 Table 3).
func (c *Card) appPropertyTemplate() []byte {
	var algs []byte
	for _, a := range piv.KeyAlgs {
		algs = append(algs, tlv.Encode(0x80, []byte{byte(a)})...)
	}
	algs = append(algs, tlv.Encode(0x06, nil)...)
	return tlv.Encode(piv.TagAppProperty,
		tlv.Encode(0x4F, piv.AID[piv.RIDLength:]),
		tlv.Encode(0x79, tlv.Encode(0x4F, piv.AID)),
		tlv.Encode(0x50, []byte(c.store.Label())),
		tlv.Encode(0xAC, algs))
}

// getData answers GET DATA (SP 800-73-4 Part 2 §3.1.2): P1P2 3FFF and the
// data 5C with the object's tag.
func (c *Card) getData(cmd apdu.Command) ([]byte, uint16) {
	if cmd.P1 != 0x3F || cmd.P2 != 0xFF {
		return nil, apdu.SWIncorrectP1P2
	}
	objs, err := tlv.Parse(cmd.Data)
	if err != nil || len(objs) != 1 || objs[0].Tag != piv.TagTagList || len(objs[0].Value) < 1 || len(objs[0].Value) > 3 {
		return nil, apdu.SWIncorrectData
	}
	var tag uint32
	for _, b := range objs[0].Value {
		tag = tag<<8 | uint32(b)
	}
	data := c.object(tag)
	if data == nil {
		return nil, apdu.SWFileNotFound
	}
	return data, apdu.SWSuccess
}

// object returns the encoded data object with the tag, or nil when the card
// does not hold it: the Discovery object is the applet's, the others the
// store's.
func (c *Card) object(tag uint32) []byte {
	if tag == piv.TagDiscovery {
		return tlv.Encode(piv.TagDiscovery, tlv.Encode(0x4F, piv.AID), tlv.Encode(0x5F2F, pinUsagePolicy))
	}
	if content := c.store.Object(tag); content != nil {
		return tlv.Encode(piv.TagData, content)
	}
	return nil
}

// CHUIDContent builds a CHUID's content (SP 800-73-4 Part 1 Appendix A, TIG
// SCEPACS): FASC-N, GUID, expiration date (YYYYMMDD), an empty issuer
// asymmetric signature and the error detection code, as yubico-piv-tool
// writes it.
func CHUIDContent(fascn, guid []byte, expiry string) []byte {
	return bytes.Join([][]byte{
		tlv.Encode(0x30, fascn),
		tlv.Encode(0x34, guid),
		tlv.Encode(0x35, []byte(expiry)),
		tlv.Encode(0x3E, nil),
		tlv.Encode(piv.TagErrorDetect, nil),
	}, nil)
}

// CertificateContent builds a certificate container's content (SP 800-73-4
// Part 1 Appendix A): the DER certificate, CertInfo 00 (not compressed) and
// the error detection code.
func CertificateContent(der []byte) []byte {
	return bytes.Join([][]byte{
		tlv.Encode(piv.TagCertificate, der),
		tlv.Encode(piv.TagCertInfo, []byte{0x00}),
		tlv.Encode(piv.TagErrorDetect, nil),
	}, nil)
}
