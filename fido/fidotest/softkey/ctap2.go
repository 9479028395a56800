package softkey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"slices"
	"time"
)

// maxMsgSize is the largest CTAPHID message the key accepts (§11.2.4).
const maxMsgSize = 7609

// HandleCBOR runs one CTAP2 command (command byte then CBOR parameters) and
// returns the response: a status byte then the CBOR body. keepalive is called
// while the key waits for user presence; ctx ends such a wait
// (CTAPHID_CANCEL). Commands are serialized, as on a real device.
func (k *Key) HandleCBOR(ctx context.Context, msg []byte, keepalive func()) []byte {
	if len(msg) == 0 {
		return []byte{errInvalidLength}
	}
	k.cmdMu.Lock()
	defer k.cmdMu.Unlock()
	st, body := k.dispatch(ctx, msg[0], msg[1:], keepalive)
	if st != statusOK || body == nil {
		return []byte{st}
	}
	out, err := encMode.Marshal(body)
	if err != nil {
		return []byte{errOther}
	}
	return append([]byte{statusOK}, out...)
}

func (k *Key) dispatch(ctx context.Context, cmd byte, params []byte, keepalive func()) (byte, any) {
	switch cmd {
	case cmdGetInfo:
		return statusOK, k.getInfo()
	case cmdMakeCredential:
		return k.makeCredential(ctx, params, keepalive)
	case cmdGetAssertion:
		return k.getAssertion(ctx, params, keepalive)
	case cmdGetNextAssertion:
		return k.getNextAssertion()
	case cmdClientPIN:
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.clientPINLocked(params)
	case cmdReset:
		return k.reset(ctx, keepalive), nil
	}
	return errInvalidCommand, nil
}

// getInfo is authenticatorGetInfo, CTAP 2.1 §6.4.
func (k *Key) getInfo() getInfoResp {
	k.mu.Lock()
	defer k.mu.Unlock()
	versions := []string{"FIDO_2_0", "FIDO_2_1"}
	opts := map[string]bool{"rk": true, "up": true, "clientPin": k.pin.hash != nil, "pinUvAuthToken": true}
	if k.opts.CTAP20 {
		versions = versions[:1]
		delete(opts, "pinUvAuthToken")
	}
	return getInfoResp{
		Versions:     versions,
		AAGUID:       k.aaguid[:],
		Options:      opts,
		MaxMsgSize:   1200,
		PINProtocols: k.opts.PINProtocols,
		Algorithms:   []credParam{{Alg: algES256, Type: "public-key"}, {Alg: algEdDSA, Type: "public-key"}},
	}
}

// chooseAlg picks the first requested algorithm the key supports (§6.1.2
// step 3).
func chooseAlg(params []credParam) (int, bool) {
	for _, p := range params {
		if p.Type == "public-key" && (p.Alg == algES256 || p.Alg == algEdDSA) {
			return p.Alg, true
		}
	}
	return 0, false
}

// makeCredential is authenticatorMakeCredential, CTAP 2.1 §6.1.2.
func (k *Key) makeCredential(ctx context.Context, raw []byte, keepalive func()) (byte, any) {
	var req makeCredentialReq
	if err := decMode.Unmarshal(raw, &req); err != nil {
		return errInvalidCBOR, nil
	}
	if len(req.ClientDataHash) == 0 || req.RP.ID == "" || len(req.User.ID) == 0 || len(req.Params) == 0 {
		return errMissingParameter, nil
	}
	alg, ok := chooseAlg(req.Params)
	if !ok {
		return errUnsupportedAlgorithm, nil
	}
	if req.Options["uv"] {
		return errInvalidOption, nil
	}
	if up, set := req.Options["up"]; set && !up {
		return errInvalidOption, nil
	}
	flags, st := k.authorize(req.PINUVAuthParam, req.PINUVProtocol, req.ClientDataHash, permMakeCredential, req.RP.ID)
	if st != statusOK {
		return st, nil
	}
	excluded := k.findCredentials(req.RP.ID, req.Exclude, false) != nil
	if st := k.waitPresence(ctx, keepalive); st != statusOK {
		return st, nil
	}
	if excluded {
		return errCredentialExcluded, nil
	}
	c, err := newCredential(alg, req.RP.ID, req.User, req.Options["rk"])
	if err != nil {
		return errOther, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.creds = append(k.creds, c)
	ad := k.authData(c, flags|flagUP, k.nextCounterLocked(), true)
	if k.opts.NoneAttestation {
		return statusOK, makeCredentialResp{Fmt: "none", AuthData: ad, AttStmt: map[string]any{}}
	}
	stmt := map[string]any{"alg": alg, "sig": c.sign(ad, req.ClientDataHash)}
	return statusOK, makeCredentialResp{Fmt: "packed", AuthData: ad, AttStmt: stmt}
}

// authorize checks a pinUvAuthParam when present and says whether UV is
// given; without one a key with a PIN refuses MakeCredential (§6.1.2 step 6).
func (k *Key) authorize(param []byte, proto int, cdh []byte, perm int, rpID string) (byte, byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if param == nil {
		if perm == permMakeCredential && k.pin.hash != nil {
			return 0, errPUATRequired
		}
		return 0, statusOK
	}
	if st := k.checkTokenLocked(proto, param, cdh, perm, rpID); st != statusOK {
		return 0, st
	}
	return flagUV, statusOK
}

// findCredentials returns the credentials for rpID: those named in list, or
// the discoverable ones when list is empty and discoverable is set.
func (k *Key) findCredentials(rpID string, list []credDescriptor, discoverable bool) []*credential {
	k.mu.Lock()
	defer k.mu.Unlock()
	h := sha256.Sum256([]byte(rpID))
	var out []*credential
	for i := len(k.creds) - 1; i >= 0; i-- {
		c := k.creds[i]
		if c.rpIDHash != h {
			continue
		}
		named := slices.ContainsFunc(list, func(d credDescriptor) bool { return bytes.Equal(d.ID, c.id) })
		if named || (len(list) == 0 && discoverable && c.resident) {
			out = append(out, c)
		}
	}
	return out
}

// pendingAssertions holds the state for authenticatorGetNextAssertion.
type pendingAssertions struct {
	creds   []*credential
	cdh     []byte
	flags   byte
	expires time.Time
}

// getAssertion is authenticatorGetAssertion, CTAP 2.1 §6.2.2.
func (k *Key) getAssertion(ctx context.Context, raw []byte, keepalive func()) (byte, any) {
	var req getAssertionReq
	if err := decMode.Unmarshal(raw, &req); err != nil {
		return errInvalidCBOR, nil
	}
	if req.RPID == "" || len(req.ClientDataHash) == 0 {
		return errMissingParameter, nil
	}
	if req.Options["uv"] || req.Options["rk"] {
		return errUnsupportedOption, nil
	}
	flags, st := k.authorize(req.PINUVAuthParam, req.PINUVProtocol, req.ClientDataHash, permGetAssertion, req.RPID)
	if st != statusOK {
		return st, nil
	}
	creds := k.findCredentials(req.RPID, req.Allow, true)
	if len(creds) == 0 {
		return errNoCredentials, nil
	}
	if up, set := req.Options["up"]; !set || up {
		if st := k.waitPresence(ctx, keepalive); st != statusOK {
			return st, nil
		}
		flags |= flagUP
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.next = nil
	count := 0
	if len(req.Allow) == 0 && len(creds) > 1 {
		count = len(creds)
		k.next = &pendingAssertions{creds: creds[1:], cdh: req.ClientDataHash, flags: flags, expires: time.Now().Add(30 * time.Second)}
	}
	resp := k.assertLocked(creds[0], req.ClientDataHash, flags, len(req.Allow) == 0)
	resp.Count = count
	return statusOK, resp
}

// getNextAssertion is authenticatorGetNextAssertion, CTAP 2.1 §6.3.
func (k *Key) getNextAssertion() (byte, any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.next
	if n == nil || len(n.creds) == 0 || time.Now().After(n.expires) {
		k.next = nil
		return errNotAllowed, nil
	}
	c := n.creds[0]
	n.creds = n.creds[1:]
	return statusOK, k.assertLocked(c, n.cdh, n.flags, true)
}

// assertLocked signs one assertion with credential c.
func (k *Key) assertLocked(c *credential, cdh []byte, flags byte, withUser bool) getAssertionResp {
	ad := k.authData(c, flags, k.nextCounterLocked(), false)
	resp := getAssertionResp{
		Credential: credDescriptor{ID: c.id, Type: "public-key"},
		AuthData:   ad,
		Signature:  c.sign(ad, cdh),
	}
	if withUser && c.resident {
		u := userEntity{ID: c.user.ID}
		resp.User = &u
	}
	return resp
}

// reset is authenticatorReset, CTAP 2.1 §6.6: after user presence, every
// credential and the PIN are erased.
func (k *Key) reset(ctx context.Context, keepalive func()) byte {
	if st := k.waitPresence(ctx, keepalive); st != statusOK {
		return st
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.creds, k.next, k.counter = nil, nil, 0
	k.pin = newPINState()
	return statusOK
}
