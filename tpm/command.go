package tpm

import (
	"encoding/binary"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// The two commands every signature sends, TPM2_PolicySecret and TPM2_Sign,
// are laid out and read here by hand instead of by go-tpm, which marshals
// by reflection (about 470 allocations per command, a third of the
// engine's CPU per signature). Everything else goes through go-tpm. The
// layout is TPM 2.0 Part 1 §18: a command with one authorization session
// and a response without handles.

var be = binary.BigEndian

// Session attribute bits (TPM 2.0 Part 2 §8.4 TPMA_SESSION).
const attrContinueSession = 0x01

// authCommand is one TPMS_AUTH_COMMAND.
type authCommand struct {
	handle tpm2.TPMHandle
	nonce  []byte
	attrs  byte
	hmac   []byte
}

// marshalCommand lays out a command (tag TPM_ST_SESSIONS) with handles,
// one authorization and its parameters.
func marshalCommand(cc tpm2.TPMCC, handles []tpm2.TPMHandle, auth authCommand, params []byte) []byte {
	authSize := 4 + 2 + len(auth.nonce) + 1 + 2 + len(auth.hmac)
	size := 10 + 4*len(handles) + 4 + authSize + len(params)
	b := make([]byte, 0, size)
	b = be.AppendUint16(b, uint16(tpm2.TPMSTSessions))
	b = be.AppendUint32(b, uint32(size))
	b = be.AppendUint32(b, uint32(cc))
	for _, h := range handles {
		b = be.AppendUint32(b, uint32(h))
	}
	b = be.AppendUint32(b, uint32(authSize))
	b = be.AppendUint32(b, uint32(auth.handle))
	b = append2B(b, auth.nonce)
	b = append(b, auth.attrs)
	b = append2B(b, auth.hmac)
	return append(b, params...)
}

// append2B appends a TPM2B: a 16-bit size and the bytes.
func append2B(b, v []byte) []byte {
	return append(be.AppendUint16(b, uint16(len(v))), v...)
}

// authResponse is one TPMS_AUTH_RESPONSE.
type authResponse struct {
	nonce []byte
	attrs byte
	hmac  []byte
}

// parseResponse splits the response to a command sent with one session
// and answered without handles: the response code (a tpm2.TPMRC error,
// as go-tpm returns it, when not success), the parameters and the
// session's authorization. A response that is not well formed is
// hwerr.ErrProtocol.
func parseResponse(rsp []byte) (params []byte, auth authResponse, err error) {
	if len(rsp) < 10 {
		return nil, auth, fmt.Errorf("TPM response of %d bytes: %w", len(rsp), hwerr.ErrProtocol)
	}
	tag, size, rc := be.Uint16(rsp), be.Uint32(rsp[2:]), tpm2.TPMRC(be.Uint32(rsp[6:]))
	if int64(size) != int64(len(rsp)) {
		return nil, auth, fmt.Errorf("TPM response says %d bytes, has %d: %w", size, len(rsp), hwerr.ErrProtocol)
	}
	if rc != tpm2.TPMRCSuccess {
		return nil, auth, rc
	}
	if tpm2.TPMST(tag) != tpm2.TPMSTSessions {
		return nil, auth, fmt.Errorf("TPM response without its session: %w", hwerr.ErrProtocol)
	}
	r := reader{b: rsp[10:]}
	params = r.next(int(r.u32()))
	auth.nonce = r.tpm2B()
	auth.attrs = r.byte()
	auth.hmac = r.tpm2B()
	if r.bad || len(r.b) != 0 {
		return nil, authResponse{}, fmt.Errorf("malformed TPM response: %w", hwerr.ErrProtocol)
	}
	return params, auth, nil
}

// reader reads big-endian fields; reading past the end sets bad and
// yields zeros.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) next(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if v := r.next(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.next(2); v != nil {
		return be.Uint16(v)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.next(4); v != nil {
		return be.Uint32(v)
	}
	return 0
}

func (r *reader) tpm2B() []byte { return r.next(int(r.u16())) }

// sendCommand sends cmd and splits the answer (parseResponse).
func (t *TPM) sendCommand(cmd []byte) ([]byte, authResponse, error) {
	rsp, err := t.tr.Send(cmd)
	if err != nil {
		return nil, authResponse{}, err
	}
	return parseResponse(rsp)
}

// sendPlainLocked sends command cc without sessions (tag
// TPM_ST_NO_SESSIONS), body being its handles and parameters, and returns
// the body of the answer (its handles and parameters): an error is the
// TPM's response code (a tpm2.TPMRC), or hwerr.ErrProtocol for an answer
// that is not well formed.
func (t *TPM) sendPlainLocked(cc tpm2.TPMCC, body []byte) ([]byte, error) {
	cmd := make([]byte, 0, 10+len(body))
	cmd = be.AppendUint16(cmd, uint16(tpm2.TPMSTNoSessions))
	cmd = be.AppendUint32(cmd, uint32(10+len(body)))
	cmd = be.AppendUint32(cmd, uint32(cc))
	cmd = append(cmd, body...)
	rsp, err := t.tr.Send(cmd)
	switch {
	case err != nil:
		return nil, err
	case len(rsp) < 10 || int64(be.Uint32(rsp[2:])) != int64(len(rsp)):
		return nil, fmt.Errorf("TPM response of %d bytes: %w", len(rsp), hwerr.ErrProtocol)
	case responseCode(rsp) != tpm2.TPMRCSuccess:
		return nil, responseCode(rsp)
	}
	return rsp[10:], nil
}

// policyRestartLocked resets the policy of session h (TPM 2.0 Part 3
// §23.17 TPM2_PolicyRestart, which go-tpm does not offer).
func (t *TPM) policyRestartLocked(h tpm2.TPMHandle) error {
	_, err := t.sendPlainLocked(tpm2.TPMCCPolicyRestart, be.AppendUint32(nil, uint32(h)))
	return err
}
