package softkey

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"unicode/utf8"
)

// ClientPIN subcommands, CTAP 2.1 §6.5.5.
const (
	subGetRetries          = 1
	subGetKeyAgreement     = 2
	subSetPIN              = 3
	subChangePIN           = 4
	subGetPINToken         = 5
	subGetTokenWithPINPerm = 9
)

// Permissions of a PIN/UV auth token, CTAP 2.1 §6.5.5.7.
const (
	permMakeCredential = 0x01
	permGetAssertion   = 0x02
)

// clientPIN runs authenticatorClientPIN (CTAP 2.1 §6.5.5) with k.mu held.
func (k *Key) clientPINLocked(raw []byte) (byte, any) {
	var req clientPINReq
	if err := decMode.Unmarshal(raw, &req); err != nil {
		return errInvalidCBOR, nil
	}
	s := k.pin
	if req.SubCommand == subGetRetries {
		r, pc := s.retries, false
		return statusOK, clientPINResp{Retries: &r, PowerCycle: &pc}
	}
	p := protocolFor(req.Protocol)
	if p == nil || !k.protoSet[req.Protocol] {
		return errInvalidParameter, nil
	}
	switch req.SubCommand {
	case subGetKeyAgreement:
		return statusOK, clientPINResp{KeyAgreement: s.agreementCOSE()}
	case subSetPIN:
		return k.setPINLocked(p, &req), nil
	case subChangePIN:
		return k.changePINLocked(p, &req), nil
	case subGetPINToken:
		return k.getTokenLocked(p, &req, permMakeCredential|permGetAssertion, "")
	case subGetTokenWithPINPerm:
		if req.Permissions == 0 {
			return errInvalidParameter, nil
		}
		return k.getTokenLocked(p, &req, req.Permissions, req.RPID)
	}
	return errInvalidParameter, nil
}

// setPINLocked is §6.5.5.5 setPIN.
func (k *Key) setPINLocked(p pinProtocol, req *clientPINReq) byte {
	if req.KeyAgreement == nil || req.PINUVAuthParam == nil || req.NewPINEnc == nil {
		return errMissingParameter
	}
	if k.pin.hash != nil {
		return errNotAllowed
	}
	shared, ok := k.pin.sharedSecret(p, req.KeyAgreement)
	if !ok {
		return errInvalidParameter
	}
	if !hmac.Equal(p.authenticate(shared, req.NewPINEnc), req.PINUVAuthParam) {
		return errPINAuthInvalid
	}
	return k.storeNewPINLocked(p, shared, req.NewPINEnc)
}

// changePINLocked is §6.5.5.6 changePIN.
func (k *Key) changePINLocked(p pinProtocol, req *clientPINReq) byte {
	if req.KeyAgreement == nil || req.PINUVAuthParam == nil || req.NewPINEnc == nil || req.PINHashEnc == nil {
		return errMissingParameter
	}
	if k.pin.hash == nil {
		return errPINNotSet
	}
	shared, ok := k.pin.sharedSecret(p, req.KeyAgreement)
	if !ok {
		return errInvalidParameter
	}
	msg := append(append([]byte{}, req.NewPINEnc...), req.PINHashEnc...)
	if !hmac.Equal(p.authenticate(shared, msg), req.PINUVAuthParam) {
		return errPINAuthInvalid
	}
	if st := k.checkPINHashLocked(p, shared, req.PINHashEnc); st != statusOK {
		return st
	}
	return k.storeNewPINLocked(p, shared, req.NewPINEnc)
}

// getTokenLocked is §6.5.5.7 getPinToken and
// getPinUvAuthTokenUsingPinWithPermissions.
func (k *Key) getTokenLocked(p pinProtocol, req *clientPINReq, perms int, rpID string) (byte, any) {
	if req.KeyAgreement == nil || req.PINHashEnc == nil {
		return errMissingParameter, nil
	}
	if k.pin.hash == nil {
		return errPINNotSet, nil
	}
	shared, ok := k.pin.sharedSecret(p, req.KeyAgreement)
	if !ok {
		return errInvalidParameter, nil
	}
	if st := k.checkPINHashLocked(p, shared, req.PINHashEnc); st != statusOK {
		return st, nil
	}
	k.pin.resetToken()
	k.pin.tokenPerms, k.pin.tokenRPID = perms, rpID
	return statusOK, clientPINResp{Token: p.encrypt(shared, k.pin.token)}
}

// checkPINHashLocked compares the encrypted PIN hash with the stored one,
// keeping the retry counters as §6.5.5.6 steps 6–10 describe.
func (k *Key) checkPINHashLocked(p pinProtocol, shared, pinHashEnc []byte) byte {
	s := k.pin
	if s.retries == 0 {
		return errPINBlocked
	}
	if s.consecutive >= 3 {
		return errPINAuthBlocked
	}
	s.retries--
	got, err := p.decrypt(shared, pinHashEnc)
	if err != nil || len(got) != 16 || !hmac.Equal(got, s.hash) {
		s.regenerate()
		s.consecutive++
		switch {
		case s.retries == 0:
			return errPINBlocked
		case s.consecutive >= 3:
			return errPINAuthBlocked
		}
		return errPINInvalid
	}
	s.retries, s.consecutive = maxPINRetries, 0
	return statusOK
}

// storeNewPINLocked decrypts newPinEnc, checks the PIN policy (4 to 63
// bytes, at least 4 code points) and stores LEFT(SHA-256(PIN), 16).
func (k *Key) storeNewPINLocked(p pinProtocol, shared, newPINEnc []byte) byte {
	padded, err := p.decrypt(shared, newPINEnc)
	if err != nil || len(padded) != 64 {
		return errInvalidParameter
	}
	defer clear(padded)
	pin, _, _ := bytes.Cut(padded, []byte{0})
	if len(pin) > 63 || utf8.RuneCount(pin) < 4 {
		return errPINPolicyViolation
	}
	h := sha256.Sum256(pin)
	k.pin.hash = h[:16]
	k.pin.retries, k.pin.consecutive = maxPINRetries, 0
	k.pin.resetToken()
	return statusOK
}

// checkTokenLocked verifies a pinUvAuthParam over clientDataHash for a
// command needing perm on rpID (§6.1.2 step 11, §6.2.2 step 6).
func (k *Key) checkTokenLocked(proto int, param, cdh []byte, perm int, rpID string) byte {
	p := protocolFor(proto)
	if p == nil || !k.protoSet[proto] {
		return errInvalidParameter
	}
	if k.pin.hash == nil {
		return errPINNotSet
	}
	if !hmac.Equal(p.authenticate(k.pin.token, cdh), param) {
		return errPINAuthInvalid
	}
	if k.pin.tokenPerms&perm == 0 || (k.pin.tokenRPID != "" && k.pin.tokenRPID != rpID) {
		return errPINAuthInvalid
	}
	k.pin.tokenRPID = rpID
	return statusOK
}
