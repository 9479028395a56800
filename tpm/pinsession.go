package tpm

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// pinSession is the HMAC session, salted with the storage key, that the
// engine keeps loaded to authorize PIN and PUK indices (TPM 2.0 Part 1
// §19.6): started once, it saves the ECDH of a new salted session on every
// PIN check. The authValue is given with each command (a session is not
// bound to an entity: the HMAC key is the session key followed by the
// authorized entity's authValue), and the commands it authorizes are
// marshalled by hand (command.go). It occupies one of the TPM's
// loaded-session slots; operations that need three sessions of their own
// drop it first (dropSessionsLocked).
type pinSession struct {
	handle      tpm2.TPMHandle
	sessionKey  []byte
	nonceCaller []byte
	nonceTPM    []byte
}

// pinSessionLocked returns the held session, starting it when there is
// none (TPM2_StartAuthSession salted with the storage key).
func (t *TPM) pinSessionLocked() (*pinSession, error) {
	if t.pin != nil {
		return t.pin, nil
	}
	key, err := tpm2.ImportEncapsulationKey(&t.srk.public)
	if err != nil {
		return nil, fmt.Errorf("PIN session: %w", err)
	}
	salt, encSalt, err := tpm2.CreateEncryptedSalt(rand.Reader, key)
	if err != nil {
		return nil, fmt.Errorf("PIN session: %w", err)
	}
	defer clear(salt)
	nonceCaller := randomBytes(16)
	rsp, err := tpm2.StartAuthSession{
		TPMKey:        t.srk.handle.Handle,
		Bind:          tpm2.TPMRHNull,
		NonceCaller:   tpm2.TPM2BNonce{Buffer: nonceCaller},
		EncryptedSalt: tpm2.TPM2BEncryptedSecret{Buffer: encSalt},
		SessionType:   tpm2.TPMSEHMAC,
		Symmetric:     tpm2.TPMTSymDef{Algorithm: tpm2.TPMAlgNull},
		AuthHash:      tpm2.TPMAlgSHA256,
	}.Execute(t.tr)
	if err != nil {
		return nil, fmt.Errorf("start PIN session: %w", classify(err))
	}
	t.pin = &pinSession{
		handle:      tpm2.TPMHandle(rsp.SessionHandle),
		sessionKey:  tpm2.KDFa(crypto.SHA256, salt, "ATH", rsp.NonceTPM.Buffer, nonceCaller, 256),
		nonceCaller: nonceCaller,
		nonceTPM:    rsp.NonceTPM.Buffer,
	}
	return t.pin, nil
}

// dropPINSessionLocked flushes the held session, if any.
func (t *TPM) dropPINSessionLocked() {
	if t.pin != nil {
		t.flushLocked(t.pin.handle)
		clear(t.pin.sessionKey)
		t.pin = nil
	}
}

// dropSessionsLocked flushes both sessions the engine keeps loaded (the
// PIN session and the signing policy session), freeing the TPM's session
// slots for an operation that needs them.
func (t *TPM) dropSessionsLocked() {
	t.dropSignSessionLocked()
	t.dropPINSessionLocked()
}

// authorize is the session's authorization of command cc on the entities
// named names with parameters params, under a fresh nonceCaller, with
// auth (the authorized entity's authValue) in the HMAC key; the session
// continues.
func (s *pinSession) authorize(auth []byte, cc tpm2.TPMCC, params []byte, names ...[]byte) authCommand {
	s.nonceCaller = randomBytes(16)
	h := sha256.New()
	h.Write(be.AppendUint32(nil, uint32(cc)))
	for _, n := range names {
		h.Write(n)
	}
	h.Write(params)
	return authCommand{
		handle: s.handle,
		nonce:  s.nonceCaller,
		attrs:  attrContinueSession,
		hmac:   s.hmac(auth, h.Sum(nil), s.nonceCaller, s.nonceTPM, attrContinueSession),
	}
}

// validate checks the TPM's HMAC over a successful response to cc with
// parameters params (rpHash = H(TPM_RC_SUCCESS || commandCode ||
// parameters)) and keeps the new nonceTPM. auth is as for authorize.
func (s *pinSession) validate(auth []byte, cc tpm2.TPMCC, params []byte, rsp authResponse) error {
	h := sha256.New()
	h.Write(be.AppendUint32(nil, uint32(tpm2.TPMRCSuccess)))
	h.Write(be.AppendUint32(nil, uint32(cc)))
	h.Write(params)
	want := s.hmac(auth, h.Sum(nil), rsp.nonce, s.nonceCaller, rsp.attrs)
	if !hmac.Equal(want, rsp.hmac) || rsp.attrs&attrContinueSession == 0 {
		return fmt.Errorf("the TPM's answer does not authenticate: %w", hwerr.ErrProtocol)
	}
	s.nonceTPM = rsp.nonce
	return nil
}

// hmac is HMAC-SHA256(sessionKey || authValue, pHash || newer || older ||
// attributes) (Part 1 §19.6.5; no decrypt or encrypt nonces).
func (s *pinSession) hmac(auth, pHash, newer, older []byte, attrs byte) []byte {
	key := append(append(make([]byte, 0, len(s.sessionKey)+len(auth)), s.sessionKey...), auth...)
	defer clear(key)
	mac := hmac.New(sha256.New, key)
	mac.Write(pHash)
	mac.Write(newer)
	mac.Write(older)
	mac.Write([]byte{attrs})
	return mac.Sum(nil)
}
