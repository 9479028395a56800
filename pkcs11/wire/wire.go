// Package wire is the request/response protocol between hwauthd and its
// PKCS#11 helper process (cmd/hwauthd-pkcs11). Modules are loaded only in the
// helper, so a module that crashes or hangs takes down the helper, never the
// daemon.
//
// Every message is a frame: a 4-byte big-endian length followed by that many
// bytes. A response frame is the JSON of one Response; responses carry the
// ID of the request they answer, and a Response with ID 0 and a non-empty
// Event is sent by the helper on its own (a slot event). A request frame is
// the JSON of one Request (4-byte length first) followed by its two secrets,
// PIN and NewPIN, each as a 2-byte length and raw bytes.
//
// PINs cross this channel: it is a socketpair private to the two processes.
// They travel outside the JSON so that no encoder keeps a copy in a pooled
// buffer: writers zero the frame after sending it, readers zero it after
// decoding, and holders zero the PIN slices after use.
package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxFrame is the largest frame either side accepts. A token with many
// certificates stays far below it.
const MaxFrame = 4 << 20

// Operations of Request.Op.
const (
	// OpLoad loads and initializes Request.Modules (C_Initialize); it is the
	// first request a helper receives.
	OpLoad = "load"
	// OpList lists the present tokens of every loaded module with their
	// certificates and public keys.
	OpList = "list"
	// OpTokenInfo reads one token's flags (C_GetTokenInfo) without a login.
	OpTokenInfo = "tokeninfo"
	// OpLogin verifies the PIN with C_Login and logs out again.
	OpLogin = "login"
	// OpSetPIN changes the user PIN (C_SetPIN).
	OpSetPIN = "setpin"
	// OpUnblock logs in as security officer with the PUK and sets a new user
	// PIN (C_Login(CKU_SO) + C_InitPIN).
	OpUnblock = "unblock"
	// OpSign signs Request.Digest with a key (C_SignInit + C_Sign).
	OpSign = "sign"
)

// EventSlot is Response.Event for a slot event (C_WaitForSlotEvent
// returned): the daemon should list the tokens again.
const EventSlot = "slot"

// TokenRef names a token: the module that reaches it, the slot it is in, and
// its serial number, so that a token swapped in the same slot is not
// mistaken for the one the daemon knows.
type TokenRef struct {
	Module string `json:"module"`
	Slot   uint   `json:"slot"`
	Serial string `json:"serial"`
}

// Request is one call from the daemon to the helper.
type Request struct {
	ID      uint64    `json:"id"`
	Op      string    `json:"op"`
	Modules []string  `json:"modules,omitempty"`
	Token   *TokenRef `json:"token,omitempty"`
	// KeyID is the key's CKA_ID.
	KeyID []byte `json:"key_id,omitempty"`
	// Algorithm is one of the API's signing algorithms (ecdsa-sha256, …).
	Algorithm string `json:"algorithm,omitempty"`
	Digest    []byte `json:"digest,omitempty"`
	// PIN is the user PIN (OpLogin, OpSetPIN, OpSign) or the PUK (OpUnblock).
	// It travels after the JSON, never inside it.
	PIN []byte `json:"-"`
	// NewPIN is the new user PIN (OpSetPIN, OpUnblock), sent like PIN.
	NewPIN []byte `json:"-"`
}

// Wipe zeroes the secrets the request holds.
func (r *Request) Wipe() {
	clear(r.PIN)
	clear(r.NewPIN)
}

// Response is the helper's answer to one Request, or an event (ID 0).
type Response struct {
	ID    uint64 `json:"id"`
	Event string `json:"event,omitempty"`
	// Module names the module of an event.
	Module string `json:"module,omitempty"`
	Error  *Error `json:"error,omitempty"`
	// Modules answers OpLoad.
	Modules []ModuleStatus `json:"modules,omitempty"`
	// Tokens answers OpList.
	Tokens []Token `json:"tokens,omitempty"`
	// Flags answers OpTokenInfo: the token's CK_TOKEN_INFO flags.
	Flags uint `json:"flags,omitempty"`
	// Signature answers OpSign (ECDSA in ASN.1 DER).
	Signature []byte `json:"signature,omitempty"`
}

// ModuleStatus reports how loading one module went.
type ModuleStatus struct {
	Path string `json:"path"`
	// Error is empty when the module loaded and initialized.
	Error string `json:"error,omitempty"`
	// Library is the module's library description and version.
	Library string `json:"library,omitempty"`
}

// Token is one present token (PKCS#11 v2.40 §5.5 CK_SLOT_INFO and
// CK_TOKEN_INFO) with the keys found on it.
type Token struct {
	Module string `json:"module"`
	Slot   uint   `json:"slot"`
	// SlotDescription is CK_SLOT_INFO.slotDescription; OpenSC puts the PC/SC
	// reader name there.
	SlotDescription string `json:"slot_description"`
	SlotFlags       uint   `json:"slot_flags"`
	Label           string `json:"label"`
	Manufacturer    string `json:"manufacturer"`
	Model           string `json:"model"`
	Serial          string `json:"serial"`
	Flags           uint   `json:"flags"`
	Keys            []Key  `json:"keys,omitempty"`
}

// Ref returns the reference that names the token in requests.
func (t *Token) Ref() *TokenRef {
	return &TokenRef{Module: t.Module, Slot: t.Slot, Serial: t.Serial}
}

// Key is a key pair on a token, found through its public key object or its
// certificate (private keys are often hidden until login).
type Key struct {
	ID    []byte `json:"id"`
	Label string `json:"label,omitempty"`
	// PublicKey is the PKIX (SubjectPublicKeyInfo) DER encoding.
	PublicKey []byte `json:"public_key"`
	// Certificate is the X.509 DER certificate with the same CKA_ID, if any.
	Certificate []byte `json:"certificate,omitempty"`
}

// Errors of the framing.
var (
	errFrameTooLarge = errors.New("frame too large")
	errBadRequest    = errors.New("malformed request frame")
)

// WriteResponse writes resp as one frame.
func WriteResponse(w io.Writer, resp *Response) error {
	body, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	return writeFrame(w, body)
}

// WriteRequest writes req as one frame, its secrets after the JSON, and
// zeroes the frame afterwards.
func WriteRequest(w io.Writer, req *Request) error {
	head, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	if len(req.PIN) > 0xffff || len(req.NewPIN) > 0xffff {
		return fmt.Errorf("encode request: PIN too long: %w", errBadRequest)
	}
	body := make([]byte, 0, 4+len(head)+4+len(req.PIN)+len(req.NewPIN))
	defer func() { clear(body[:cap(body)]) }()
	body = binary.BigEndian.AppendUint32(body, uint32(len(head)))
	body = append(body, head...)
	for _, secret := range [][]byte{req.PIN, req.NewPIN} {
		body = binary.BigEndian.AppendUint16(body, uint16(len(secret)))
		body = append(body, secret...)
	}
	return writeFrame(w, body)
}

// writeFrame writes the length and body in one write and zeroes its copy.
func writeFrame(w io.Writer, body []byte) error {
	if len(body) > MaxFrame {
		return errFrameTooLarge
	}
	buf := make([]byte, 4+len(body))
	defer clear(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame's body. The caller zeroes it after decoding.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return nil, errFrameTooLarge
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		clear(body)
		return nil, fmt.Errorf("read frame: %w", io.ErrUnexpectedEOF)
	}
	return body, nil
}

// ReadRequest reads and decodes one Request; the caller wipes it after use.
func ReadRequest(r io.Reader) (*Request, error) {
	body, err := ReadFrame(r)
	if err != nil {
		return nil, err
	}
	defer clear(body)
	return DecodeRequest(body)
}

// DecodeRequest decodes a request frame body: the JSON, then the PIN and the
// new PIN. The secrets are copied out, so the caller may zero body.
func DecodeRequest(body []byte) (*Request, error) {
	if len(body) < 4 {
		return nil, errBadRequest
	}
	n := binary.BigEndian.Uint32(body)
	if uint64(n) > uint64(len(body)-4) {
		return nil, errBadRequest
	}
	var req Request
	if err := json.Unmarshal(body[4:4+n], &req); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	rest := body[4+n:]
	for _, dst := range []*[]byte{&req.PIN, &req.NewPIN} {
		if len(rest) < 2 || int(binary.BigEndian.Uint16(rest)) > len(rest)-2 {
			req.Wipe()
			return nil, errBadRequest
		}
		l := int(binary.BigEndian.Uint16(rest))
		if l > 0 {
			*dst = append([]byte(nil), rest[2:2+l]...)
		}
		rest = rest[2+l:]
	}
	if len(rest) != 0 {
		req.Wipe()
		return nil, errBadRequest
	}
	return &req, nil
}

// ReadResponse reads and decodes one Response. It is the daemon's parser of
// the helper's bytes (fuzzed by FuzzReadResponse).
func ReadResponse(r io.Reader) (*Response, error) {
	body, err := ReadFrame(r)
	if err != nil {
		return nil, err
	}
	return DecodeResponse(body)
}

// DecodeResponse decodes one frame body into a Response and checks it.
func DecodeResponse(body []byte) (*Response, error) {
	var resp Response
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	if resp.ID == 0 && resp.Event == "" {
		return nil, errors.New("decode response: neither an answer nor an event")
	}
	return &resp, nil
}
