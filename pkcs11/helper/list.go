package helper

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"sort"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/pkcs11/p11crypto"
	"github.com/hwauthd/hwauthd/pkcs11/wire"
	"github.com/miekg/pkcs11"
)

// maxObjects bounds how many objects of one class are read from a token.
const maxObjects = 64

// list returns the present, initialized tokens of every module. A slot that
// cannot be read is left out; the daemon sees it again on the next scan.
func (s *Server) list() []wire.Token {
	var out []wire.Token
	for _, m := range s.modulesInOrder() {
		slots, err := m.ctx.GetSlotList(true)
		if err != nil {
			continue
		}
		for _, slot := range slots {
			if t, ok := m.readToken(slot); ok {
				out = append(out, t)
			}
		}
	}
	return out
}

// readToken describes the token in slot with its keys (C_GetSlotInfo,
// C_GetTokenInfo, C_FindObjects).
func (m *module) readToken(slot uint) (wire.Token, bool) {
	l := m.slotLock(slot)
	l.Lock()
	defer l.Unlock()
	si, err := m.ctx.GetSlotInfo(slot)
	if err != nil {
		return wire.Token{}, false
	}
	ti, err := m.ctx.GetTokenInfo(slot)
	if err != nil || ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
		return wire.Token{}, false
	}
	t := wire.Token{
		Module: m.path, Slot: slot,
		SlotDescription: trim(si.SlotDescription), SlotFlags: si.Flags,
		Label: trim(ti.Label), Manufacturer: trim(ti.ManufacturerID), Model: trim(ti.Model),
		Serial: trim(ti.SerialNumber), Flags: ti.Flags,
	}
	sh, err := m.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		return t, true
	}
	defer m.ctx.CloseSession(sh)
	t.Keys = m.readKeys(sh)
	return t, true
}

// readKeys finds the token's key pairs through their public key objects and
// certificates, joined by CKA_ID. A key whose public key cannot be read or
// parsed, or is of a type devices do not report, is left out.
func (m *module) readKeys(sh pkcs11.SessionHandle) []wire.Key {
	byID := map[string]*wire.Key{}
	for _, oh := range m.find(sh, pkcs11.CKO_PUBLIC_KEY, nil) {
		id, label, der, ok := m.publicKey(sh, oh)
		if ok {
			byID[string(id)] = &wire.Key{ID: id, Label: label, PublicKey: der}
		}
	}
	for _, oh := range m.find(sh, pkcs11.CKO_CERTIFICATE, nil) {
		m.addCertificate(sh, oh, byID)
	}
	out := make([]wire.Key, 0, len(byID))
	for _, k := range byID {
		pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
		if err != nil {
			continue
		}
		if _, err := device.KeyAlgorithmOf(pub); err == nil {
			out = append(out, *k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].ID, out[j].ID) < 0 })
	return out
}

// addCertificate records an X.509 certificate under its CKA_ID, taking the
// public key from it when the token has no public key object.
func (m *module) addCertificate(sh pkcs11.SessionHandle, oh pkcs11.ObjectHandle, byID map[string]*wire.Key) {
	attrs, err := m.ctx.GetAttributeValue(sh, oh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil),
	})
	if err != nil {
		return
	}
	cert, err := x509.ParseCertificate(attrs[2].Value)
	if err != nil {
		return
	}
	id := string(attrs[0].Value)
	k, ok := byID[id]
	if !ok {
		der, err := x509.MarshalPKIXPublicKey(cert.PublicKey)
		if err != nil {
			return
		}
		k = &wire.Key{ID: attrs[0].Value, Label: string(attrs[1].Value), PublicKey: der}
		byID[id] = k
	}
	k.Certificate = attrs[2].Value
}

// publicKey reads a public key object's CKA_ID, label and key, as PKIX DER.
func (m *module) publicKey(sh pkcs11.SessionHandle, oh pkcs11.ObjectHandle) (id []byte, label string, der []byte, ok bool) {
	attrs, err := m.ctx.GetAttributeValue(sh, oh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
	})
	if err != nil {
		return nil, "", nil, false
	}
	pub, err := m.keyMaterial(sh, oh, attrUint(attrs[2].Value))
	if err != nil {
		return nil, "", nil, false
	}
	der, err = x509.MarshalPKIXPublicKey(pub)
	return attrs[0].Value, string(attrs[1].Value), der, err == nil
}

// keyMaterial reads the public values of an EC or RSA key object.
func (m *module) keyMaterial(sh pkcs11.SessionHandle, oh pkcs11.ObjectHandle, keyType uint) (crypto.PublicKey, error) {
	switch keyType {
	case pkcs11.CKK_EC:
		a, err := m.ctx.GetAttributeValue(sh, oh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
		})
		if err != nil {
			return nil, err
		}
		return p11crypto.ECPublicKey(a[0].Value, a[1].Value)
	case pkcs11.CKK_RSA:
		a, err := m.ctx.GetAttributeValue(sh, oh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
		})
		if err != nil {
			return nil, err
		}
		return p11crypto.RSAPublicKey(a[0].Value, a[1].Value)
	}
	return nil, pkcs11.Error(pkcs11.CKR_KEY_TYPE_INCONSISTENT)
}

// find returns the handles of up to maxObjects objects of class, with
// CKA_ID id when id is not nil (C_FindObjectsInit, C_FindObjects,
// C_FindObjectsFinal).
func (m *module) find(sh pkcs11.SessionHandle, class uint, id []byte) []pkcs11.ObjectHandle {
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)}
	if id != nil {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	}
	if err := m.ctx.FindObjectsInit(sh, tmpl); err != nil {
		return nil
	}
	defer m.ctx.FindObjectsFinal(sh)
	objs, _, err := m.ctx.FindObjects(sh, maxObjects)
	if err != nil {
		return nil
	}
	return objs
}

// attrUint decodes a CK_ULONG attribute value (native byte order, as
// miekg/pkcs11 returns it).
func attrUint(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return ^uint(0)
}
