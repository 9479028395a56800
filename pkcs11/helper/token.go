package helper

import (
	"fmt"
	"strings"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pkcs11/wire"
	"github.com/miekg/pkcs11"
)

// tokenSession is one operation's session on a token, with the slot lock
// held until close.
type tokenSession struct {
	m        *module
	slot     uint
	sh       pkcs11.SessionHandle
	flags    uint // CK_TOKEN_INFO flags when the session was opened
	loggedIn bool
	unlock   func()
}

// open locks the token's slot, checks that the token there is still the one
// ref names (a different serial means the named token was removed), and
// opens a session (read-write when rw).
func (s *Server) open(ref *wire.TokenRef, rw bool) (*tokenSession, error) {
	if ref == nil {
		return nil, fmt.Errorf("no token named: %w", hwerr.ErrInvalidInput)
	}
	s.mu.Lock()
	m := s.modules[ref.Module]
	s.mu.Unlock()
	if m == nil {
		return nil, fmt.Errorf("module %s is not loaded: %w", ref.Module, hwerr.ErrRemoved)
	}
	l := m.slotLock(ref.Slot)
	l.Lock()
	ti, err := m.ctx.GetTokenInfo(ref.Slot)
	if err != nil {
		l.Unlock()
		// The token the daemon knows is gone or unreadable: modules answer
		// CKR_TOKEN_NOT_PRESENT, CKR_SLOT_ID_INVALID or, for a deleted
		// SoftHSM2 token, CKR_GENERAL_ERROR.
		return nil, fmt.Errorf("C_GetTokenInfo for slot %d: %v: %w", ref.Slot, err, hwerr.ErrRemoved)
	}
	if trim(ti.SerialNumber) != ref.Serial {
		l.Unlock()
		return nil, fmt.Errorf("slot %d holds another token: %w", ref.Slot, hwerr.ErrRemoved)
	}
	flags := uint(pkcs11.CKF_SERIAL_SESSION)
	if rw {
		flags |= pkcs11.CKF_RW_SESSION
	}
	sh, err := m.ctx.OpenSession(ref.Slot, flags)
	if err != nil {
		l.Unlock()
		return nil, classify("C_OpenSession", err)
	}
	return &tokenSession{m: m, slot: ref.Slot, sh: sh, flags: ti.Flags, unlock: l.Unlock}, nil
}

// close logs out if the session logged in, closes the session and releases
// the slot.
func (t *tokenSession) close() {
	if t.loggedIn {
		_ = t.m.ctx.Logout(t.sh)
	}
	_ = t.m.ctx.CloseSession(t.sh)
	t.unlock()
}

// currentFlags reads the token's flags again (after a PIN attempt).
func (t *tokenSession) currentFlags() uint {
	ti, err := t.m.ctx.GetTokenInfo(t.slot)
	if err != nil {
		return 0
	}
	return ti.Flags
}

// login calls C_Login for user (CKU_USER, CKU_SO or CKU_CONTEXT_SPECIFIC)
// once; a wrong PIN is never retried. what names the secret for errors.
func (t *tokenSession) login(user uint, what string, pin []byte) error {
	if len(pin) == 0 && t.flags&pkcs11.CKF_PROTECTED_AUTHENTICATION_PATH == 0 {
		return fmt.Errorf("C_Login: no %s given: %w", what, hwerr.ErrPINRequired)
	}
	err := t.m.fl.login(t.sh, user, pin)
	if err == nil || errorsIsRV(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		if user != pkcs11.CKU_CONTEXT_SPECIFIC {
			t.loggedIn = true
		}
		return nil
	}
	return pinError("C_Login", what, err, t.currentFlags())
}

// tokenInfo answers OpTokenInfo with the token's flags.
func (s *Server) tokenInfo(ref *wire.TokenRef) (*wire.Response, error) {
	t, err := s.open(ref, false)
	if err != nil {
		return nil, err
	}
	defer t.close()
	return &wire.Response{Flags: t.flags}, nil
}

// verifyPIN checks the user PIN with C_Login and logs out again.
func (s *Server) verifyPIN(ref *wire.TokenRef, pin []byte) error {
	t, err := s.open(ref, false)
	if err != nil {
		return err
	}
	defer t.close()
	return t.login(pkcs11.CKU_USER, "PIN", pin)
}

// setPIN changes the user PIN with C_SetPIN in a read-write session that is
// not logged in (PKCS#11 v2.40 §5.5: then the user PIN is changed).
func (s *Server) setPIN(ref *wire.TokenRef, oldPIN, newPIN []byte) error {
	t, err := s.open(ref, true)
	if err != nil {
		return err
	}
	defer t.close()
	if err := t.m.fl.setPIN(t.sh, oldPIN, newPIN); err != nil {
		return pinError("C_SetPIN", "PIN", err, t.currentFlags())
	}
	return nil
}

// unblock logs in as security officer with the PUK and sets a new user PIN
// with C_InitPIN.
func (s *Server) unblock(ref *wire.TokenRef, puk, newPIN []byte) error {
	t, err := s.open(ref, true)
	if err != nil {
		return err
	}
	defer t.close()
	if err := t.login(pkcs11.CKU_SO, "PUK", puk); err != nil {
		return err
	}
	if err := t.m.fl.initPIN(t.sh, newPIN); err != nil {
		return classify("C_InitPIN", err)
	}
	return nil
}

// trim removes the blank padding of PKCS#11 fixed-size strings.
func trim(s string) string {
	return strings.TrimRight(s, " \x00")
}

// errorsIsRV reports whether err is the PKCS#11 return value r.
func errorsIsRV(err error, r uint) bool {
	e, ok := err.(pkcs11.Error)
	return ok && uint(e) == r
}
