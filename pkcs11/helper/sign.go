package helper

import (
	"crypto"
	"crypto/rsa"
	"fmt"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/emsa"
	"github.com/hwauthd/hwauthd/pkcs11/p11crypto"
	"github.com/hwauthd/hwauthd/pkcs11/wire"
	"github.com/miekg/pkcs11"
)

// mechanism builds the PKCS#11 mechanism that signs with alg and the data
// C_Sign gets from the digest. The daemon hands over a digest, so the
// hashing mechanisms (CKM_SHA256_RSA_PKCS and friends) cannot be used: ECDSA
// signs the digest itself with CKM_ECDSA (PKCS#11 v2.40 §2.3.6), PKCS #1
// v1.5 is CKM_RSA_PKCS over the DigestInfo (§2.1.6, RFC 8017 §9.2), PSS is
// CKM_RSA_PKCS_PSS over the digest with the hash, MGF1 over the same hash and
// a salt as long as it (§2.1.14).
func mechanism(alg device.SignAlgorithm, digest []byte) ([]*pkcs11.Mechanism, []byte, error) {
	opts := alg.SignerOpts()
	pss, isPSS := opts.(*rsa.PSSOptions)
	switch {
	case opts == nil:
		return nil, nil, fmt.Errorf("algorithm %q: %w", alg, hwerr.ErrNotSupported)
	case !alg.RSA():
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, digest, nil
	case opts.HashFunc() != crypto.SHA256: // the RSA parameters below are SHA-256's
		return nil, nil, fmt.Errorf("algorithm %q: %w", alg, hwerr.ErrNotSupported)
	case isPSS:
		params := pkcs11.NewPSSParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, uint(pss.Hash.Size()))
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, params)}, digest, nil
	default:
		di, err := emsa.DigestInfoSHA256(digest)
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)}, di, err
	}
}

// sign answers OpSign: it logs in with the PIN, finds the private key by
// CKA_ID, signs (C_SignInit, then C_Login(CKU_CONTEXT_SPECIFIC) for a key
// with CKA_ALWAYS_AUTHENTICATE, then C_Sign) and logs out.
func (s *Server) sign(req *wire.Request) ([]byte, error) {
	alg, ok := device.ParseSignAlgorithm(req.Algorithm)
	if !ok {
		return nil, fmt.Errorf("algorithm %q: %w", req.Algorithm, hwerr.ErrNotSupported)
	}
	if len(req.Digest) != alg.Hash().Size() {
		return nil, fmt.Errorf("%s needs a %d-byte digest: %w", alg, alg.Hash().Size(), hwerr.ErrInvalidInput)
	}
	keyType := uint(pkcs11.CKK_EC)
	if alg.RSA() {
		keyType = pkcs11.CKK_RSA
	}
	t, err := s.open(req.Token, false)
	if err != nil {
		return nil, err
	}
	defer t.close()
	if len(req.PIN) > 0 || t.flags&pkcs11.CKF_LOGIN_REQUIRED != 0 {
		if err := t.login(pkcs11.CKU_USER, "PIN", req.PIN); err != nil {
			return nil, err
		}
	}
	key, alwaysAuth, err := t.privateKey(req.KeyID, keyType)
	if err != nil {
		return nil, err
	}
	m, data, err := mechanism(alg, req.Digest)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, hwerr.ErrInvalidInput)
	}
	if err := t.m.ctx.SignInit(t.sh, m, key); err != nil {
		return nil, classify("C_SignInit", err)
	}
	if alwaysAuth {
		if err := t.login(pkcs11.CKU_CONTEXT_SPECIFIC, "PIN", req.PIN); err != nil {
			return nil, err
		}
	}
	sig, err := t.m.ctx.Sign(t.sh, data)
	if err != nil {
		return nil, classify("C_Sign", err)
	}
	if !alg.RSA() { // ECDSA: r||s to DER
		return p11crypto.ECDSASignatureDER(sig)
	}
	return sig, nil
}

// privateKey finds the private key with CKA_ID id and checks its type. It
// reports whether the key needs a context-specific login for each use.
func (t *tokenSession) privateKey(id []byte, keyType uint) (pkcs11.ObjectHandle, bool, error) {
	objs := t.m.find(t.sh, pkcs11.CKO_PRIVATE_KEY, id)
	if len(objs) == 0 {
		if !t.loggedIn {
			return 0, false, fmt.Errorf("private key %x not visible before login: %w", id, hwerr.ErrPINRequired)
		}
		return 0, false, fmt.Errorf("private key %x: %w", id, hwerr.ErrNotFound)
	}
	attrs, err := t.m.ctx.GetAttributeValue(t.sh, objs[0], []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
	})
	if err != nil {
		return 0, false, classify("C_GetAttributeValue", err)
	}
	if attrUint(attrs[0].Value) != keyType {
		return 0, false, fmt.Errorf("key %x has another type: %w", id, hwerr.ErrInvalidInput)
	}
	return objs[0], t.alwaysAuthenticate(objs[0]), nil
}

// alwaysAuthenticate reads CKA_ALWAYS_AUTHENTICATE; modules that do not know
// it get false.
func (t *tokenSession) alwaysAuthenticate(oh pkcs11.ObjectHandle) bool {
	attrs, err := t.m.ctx.GetAttributeValue(t.sh, oh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_AUTHENTICATE, nil),
	})
	return err == nil && len(attrs[0].Value) == 1 && attrs[0].Value[0] != 0
}
