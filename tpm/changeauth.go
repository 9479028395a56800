package tpm

import (
	"encoding/binary"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/hwauthd/hwauthd/hwerr"
)

// nvChangeAuth is TPM2_NV_ChangeAuth (TPM 2.0 Part 3 §31.15), which
// go-tpm v0.9.8 has only as a command code: it sets a new authValue on an
// NV index. The index is authorized by auth, a policy session (the ADMIN
// role of an NV index always needs one); newAuth travels encrypted by
// enc, a salted session with parameter decryption and no authorization of
// its own. Built like go-tpm's commands: the sessions' own Authorize and
// Validate compute and check the HMACs. It does not zero newAuth.
func nvChangeAuth(t transport.TPM, index tpm2.NamedHandle, newAuth []byte, auth, enc tpm2.Session) error {
	sess := []tpm2.Session{auth, enc}
	for _, s := range sess {
		if err := s.Init(t); err != nil {
			return fmt.Errorf("NV_ChangeAuth session: %w", err)
		}
		if err := s.NewNonceCaller(); err != nil {
			return err
		}
	}
	cleanup := func() {
		for _, s := range sess {
			_ = s.CleanupFailure(t)
		}
	}
	parms := tpm2.Marshal(tpm2.TPM2BAuth{Buffer: newAuth})
	defer clear(parms)
	if err := enc.Encrypt(parms[2:]); err != nil {
		cleanup()
		return fmt.Errorf("NV_ChangeAuth: encrypt new authValue: %w", err)
	}
	names := []tpm2.TPM2BName{index.Name}
	// The first session's HMAC also covers the decrypt session's nonceTPM
	// (Part 1 §19.6.5).
	a0, err := auth.Authorize(tpm2.TPMCCNVChangeAuth, parms, enc.NonceTPM().Buffer, names, 0)
	if err != nil {
		cleanup()
		return err
	}
	a1, err := enc.Authorize(tpm2.TPMCCNVChangeAuth, parms, nil, names, 1)
	if err != nil {
		cleanup()
		return err
	}
	area := append(tpm2.Marshal(a0), tpm2.Marshal(a1)...)
	cmd := binary.BigEndian.AppendUint16(nil, uint16(tpm2.TPMSTSessions))
	cmd = binary.BigEndian.AppendUint32(cmd, 0) // size, set below
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(tpm2.TPMCCNVChangeAuth))
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(index.Handle))
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(len(area)))
	cmd = append(cmd, area...)
	cmd = append(cmd, parms...)
	binary.BigEndian.PutUint32(cmd[2:], uint32(len(cmd)))
	rsp, err := t.Send(cmd)
	clear(cmd)
	if err != nil {
		cleanup()
		return err
	}
	if rc := responseCode(rsp); rc != tpm2.TPMRCSuccess || len(rsp) < 10 {
		cleanup()
		if rc == tpm2.TPMRCSuccess {
			return fmt.Errorf("NV_ChangeAuth: short response: %w", hwerr.ErrProtocol)
		}
		return rc
	}
	return validateChangeAuth(rsp[10:], names, sess)
}

// validateChangeAuth checks the response sessions of TPM2_NV_ChangeAuth:
// an empty parameter area and one TPMS_AUTH_RESPONSE per session.
func validateChangeAuth(rest []byte, names []tpm2.TPM2BName, sess []tpm2.Session) error {
	bad := fmt.Errorf("NV_ChangeAuth: malformed response: %w", hwerr.ErrProtocol)
	if len(rest) < 4 || binary.BigEndian.Uint32(rest) != 0 {
		return bad
	}
	rest = rest[4:]
	for i, s := range sess {
		var r tpm2.TPMSAuthResponse
		var ok bool
		if r.Nonce.Buffer, rest, ok = take2B(rest); !ok || len(rest) < 1 {
			return bad
		}
		attrs, err := tpm2.Unmarshal[tpm2.TPMASession](rest[:1])
		if err != nil {
			return bad
		}
		r.Attributes = *attrs
		rest = rest[1:]
		if r.Authorization.Buffer, rest, ok = take2B(rest); !ok {
			return bad
		}
		if err := s.Validate(tpm2.TPMRCSuccess, tpm2.TPMCCNVChangeAuth, nil, names, i, &r); err != nil {
			return fmt.Errorf("NV_ChangeAuth: session %d: %w: %v", i, hwerr.ErrProtocol, err)
		}
	}
	if len(rest) != 0 {
		return bad
	}
	return nil
}

// take2B splits a TPM2B (2-byte big-endian size, then the bytes) off b.
func take2B(b []byte) (buf, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, b, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, b, false
	}
	return b[2 : 2+n], b[2+n:], true
}
