package tpm

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// pinSession is the HMAC session, salted with the storage key, that the
// engine keeps loaded to authorize PIN and PUK indices (TPM 2.0 Part 1
// §19.6): started once, it saves the ECDH of a new salted session on every
// PIN check. Its authValue is set for each command and cleared after (a
// session is not bound to an entity: the HMAC key is the session key
// followed by the authorized entity's authValue). It occupies one of the
// TPM's loaded-session slots; operations that need three sessions of
// their own drop it first (dropPINSessionLocked).
type pinSession struct {
	handle      tpm2.TPMHandle
	sessionKey  []byte
	nonceCaller []byte
	nonceTPM    []byte
	auth        []byte
}

var _ tpm2.Session = (*pinSession)(nil)

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

// withAuth runs fn with auth as the session's authValue.
func (s *pinSession) withAuth(auth []byte, fn func() error) error {
	s.auth = auth
	defer func() { s.auth = nil }()
	return fn()
}

// attrs are the session attributes: continueSession, so that it stays.
var pinSessionAttrs = tpm2.TPMASession{ContinueSession: true}

// Init implements tpm2.Session: the session is started already.
func (s *pinSession) Init(transport.TPM) error { return nil }

// CleanupFailure implements tpm2.Session: a failed command leaves the
// session as it was (the TPM changes no nonce), so it stays.
func (s *pinSession) CleanupFailure(transport.TPM) error { return nil }

// NonceTPM implements tpm2.Session.
func (s *pinSession) NonceTPM() tpm2.TPM2BNonce { return tpm2.TPM2BNonce{Buffer: s.nonceTPM} }

// NewNonceCaller implements tpm2.Session.
func (s *pinSession) NewNonceCaller() error {
	s.nonceCaller = randomBytes(16)
	return nil
}

// hmac is HMAC-SHA256(sessionKey || authValue, pHash || newer || older ||
// addNonces || attributes) (Part 1 §19.6.5).
func (s *pinSession) hmac(pHash, newer, older, addNonces []byte, attrs tpm2.TPMASession) []byte {
	key := append(append([]byte(nil), s.sessionKey...), s.auth...)
	defer clear(key)
	mac := hmac.New(sha256.New, key)
	mac.Write(pHash)
	mac.Write(newer)
	mac.Write(older)
	mac.Write(addNonces)
	mac.Write(tpm2.Marshal(attrs))
	return mac.Sum(nil)
}

// Authorize implements tpm2.Session: cpHash = H(commandCode || names ||
// parameters).
func (s *pinSession) Authorize(cc tpm2.TPMCC, parms, addNonces []byte, names []tpm2.TPM2BName, _ int) (*tpm2.TPMSAuthCommand, error) {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(cc)))
	for _, n := range names {
		h.Write(n.Buffer)
	}
	h.Write(parms)
	return &tpm2.TPMSAuthCommand{
		Handle:        s.handle,
		Nonce:         tpm2.TPM2BNonce{Buffer: s.nonceCaller},
		Attributes:    pinSessionAttrs,
		Authorization: tpm2.TPM2BData{Buffer: s.hmac(h.Sum(nil), s.nonceCaller, s.nonceTPM, addNonces, pinSessionAttrs)},
	}, nil
}

// Validate implements tpm2.Session: it checks the response HMAC over
// rpHash = H(responseCode || commandCode || parameters) and keeps the new
// nonceTPM.
func (s *pinSession) Validate(rc tpm2.TPMRC, cc tpm2.TPMCC, parms []byte, _ []tpm2.TPM2BName, _ int, auth *tpm2.TPMSAuthResponse) error {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(rc)))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(cc)))
	h.Write(parms)
	want := s.hmac(h.Sum(nil), auth.Nonce.Buffer, s.nonceCaller, nil, auth.Attributes)
	if !hmac.Equal(want, auth.Authorization.Buffer) {
		return fmt.Errorf("the TPM's answer does not authenticate")
	}
	s.nonceTPM = auth.Nonce.Buffer
	return nil
}

// IsEncryption implements tpm2.Session.
func (s *pinSession) IsEncryption() bool { return false }

// IsDecryption implements tpm2.Session.
func (s *pinSession) IsDecryption() bool { return false }

// Encrypt implements tpm2.Session.
func (s *pinSession) Encrypt([]byte) error { return nil }

// Decrypt implements tpm2.Session.
func (s *pinSession) Decrypt([]byte) error { return nil }

// Handle implements tpm2.Session.
func (s *pinSession) Handle() tpm2.TPMHandle { return s.handle }
