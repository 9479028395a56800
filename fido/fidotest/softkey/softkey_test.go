package softkey

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"
)

// hidClient drives a Conn as a host would, collecting its reports.
type hidClient struct {
	c   *Conn
	out chan [ReportSize]byte
}

func newClient(t testing.TB, k *Key) *hidClient {
	h := &hidClient{out: make(chan [ReportSize]byte, 1024)}
	h.c = k.NewConn(func(r [ReportSize]byte) error {
		select {
		case h.out <- r:
		default:
		}
		return nil
	})
	t.Cleanup(h.c.Close)
	return h
}

func (h *hidClient) send(cid uint32, cmd byte, data []byte) {
	for _, r := range frame(cid, cmd, data) {
		h.c.HandleReport(r)
	}
}

// recv reassembles the next message that is not a keepalive.
func (h *hidClient) recv(t testing.TB) (uint32, byte, []byte) {
	t.Helper()
	next := func() [ReportSize]byte {
		select {
		case r := <-h.out:
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("no report")
		}
		return [ReportSize]byte{}
	}
	for {
		r := next()
		cid, cmd := binary.BigEndian.Uint32(r[:4]), r[4]&0x7F
		n := int(binary.BigEndian.Uint16(r[5:7]))
		data := append([]byte{}, r[7:7+min(n, initPayload)]...)
		for len(data) < n {
			c := next()
			data = append(data, c[5:5+min(n-len(data), contPayload)]...)
		}
		if cmd != hidKeepalive {
			return cid, cmd, data
		}
	}
}

func (h *hidClient) init(t testing.TB) uint32 {
	t.Helper()
	nonce := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	h.send(broadcastCID, hidInit, nonce)
	cid, cmd, data := h.recv(t)
	if cid != broadcastCID || cmd != hidInit || len(data) != 17 || !bytes.Equal(data[:8], nonce) {
		t.Fatalf("INIT answer cid %x cmd %x %x", cid, cmd, data)
	}
	if data[16]&capCBOR == 0 {
		t.Fatal("CBOR capability not set")
	}
	return binary.BigEndian.Uint32(data[8:12])
}

func TestInitAndPing(t *testing.T) {
	h := newClient(t, New(Options{}))
	cid := h.init(t)
	if cid == 0 || cid == broadcastCID {
		t.Fatalf("allocated cid %x", cid)
	}
	msg := bytes.Repeat([]byte("0123456789"), 30) // spans 6 packets
	h.send(cid, hidPing, msg)
	if gotCID, cmd, data := h.recv(t); gotCID != cid || cmd != hidPing || !bytes.Equal(data, msg) {
		t.Fatalf("PING echo cid %x cmd %x len %d", gotCID, cmd, len(data))
	}
}

func TestFramingErrors(t *testing.T) {
	h := newClient(t, New(Options{}))
	cid := h.init(t)
	h.send(cid+100, hidPing, []byte{1})
	if _, cmd, data := h.recv(t); cmd != hidError || data[0] != hidErrInvalidChannel {
		t.Fatalf("unknown channel: %x %x", cmd, data)
	}
	reports := frame(cid, hidPing, make([]byte, 100))
	reports[1][4] = 5 // wrong sequence number
	for _, r := range reports {
		h.c.HandleReport(r)
	}
	if _, cmd, data := h.recv(t); cmd != hidError || data[0] != hidErrInvalidSeq {
		t.Fatalf("bad sequence: %x %x", cmd, data)
	}
	var big [ReportSize]byte
	binary.BigEndian.PutUint32(big[:4], cid)
	big[4] = 0x80 | hidCBOR
	binary.BigEndian.PutUint16(big[5:7], maxMsgSize+1)
	h.c.HandleReport(big)
	if _, cmd, data := h.recv(t); cmd != hidError || data[0] != hidErrInvalidLen {
		t.Fatalf("oversized message: %x %x", cmd, data)
	}
}

func TestGetInfoOverCBOR(t *testing.T) {
	k := New(Options{AAGUID: [16]byte{9}})
	h := newClient(t, k)
	cid := h.init(t)
	h.send(cid, hidCBOR, []byte{cmdGetInfo})
	_, cmd, data := h.recv(t)
	if cmd != hidCBOR || data[0] != statusOK {
		t.Fatalf("getInfo: %x %x", cmd, data)
	}
	var info getInfoResp
	if err := decMode.Unmarshal(data[1:], &info); err != nil {
		t.Fatal(err)
	}
	if info.AAGUID[0] != 9 || info.Options["clientPin"] || len(info.Algorithms) != 2 {
		t.Fatalf("info %+v", info)
	}
}

func TestCancelEndsTouchWait(t *testing.T) {
	k := New(Options{Presence: PresenceChannel, Touch: make(chan struct{})})
	h := newClient(t, k)
	cid := h.init(t)
	k.mu.Lock()
	c, _ := newCredential(algES256, "rp", userEntity{ID: []byte{1}}, true)
	k.creds = append(k.creds, c)
	k.mu.Unlock()
	req, _ := encMode.Marshal(getAssertionReq{RPID: "rp", ClientDataHash: make([]byte, 32)})
	h.send(cid, hidCBOR, append([]byte{cmdGetAssertion}, req...))
	<-k.TouchRequests()
	h.send(cid, hidCancel, nil)
	if _, cmd, data := h.recv(t); cmd != hidCBOR || data[0] != errKeepaliveCancel {
		t.Fatalf("after cancel: %x %x", cmd, data)
	}
}

func TestGetNextAssertion(t *testing.T) {
	k := New(Options{})
	for i := range 3 {
		c, _ := newCredential(algEdDSA, "rp", userEntity{ID: []byte{byte(i)}}, true)
		k.creds = append(k.creds, c)
	}
	req, _ := encMode.Marshal(getAssertionReq{RPID: "rp", ClientDataHash: make([]byte, 32)})
	resp := k.HandleCBOR(context.Background(), append([]byte{cmdGetAssertion}, req...), func() {})
	var first getAssertionResp
	if resp[0] != statusOK || decMode.Unmarshal(resp[1:], &first) != nil || first.Count != 3 {
		t.Fatalf("first assertion %x", resp)
	}
	seen := map[string]bool{string(first.Credential.ID): true}
	for range 2 {
		resp := k.HandleCBOR(context.Background(), []byte{cmdGetNextAssertion}, func() {})
		var a getAssertionResp
		if resp[0] != statusOK || decMode.Unmarshal(resp[1:], &a) != nil {
			t.Fatalf("next assertion %x", resp)
		}
		seen[string(a.Credential.ID)] = true
	}
	if len(seen) != 3 {
		t.Fatalf("%d distinct credentials", len(seen))
	}
	if resp := k.HandleCBOR(context.Background(), []byte{cmdGetNextAssertion}, func() {}); resp[0] != errNotAllowed {
		t.Fatalf("fourth: %x", resp)
	}
}

func FuzzCTAPHID(f *testing.F) {
	var initReq [ReportSize]byte
	binary.BigEndian.PutUint32(initReq[:4], broadcastCID)
	initReq[4], initReq[6] = 0x80|hidInit, 8
	f.Add(initReq[:])
	ping := frame(1, hidPing, make([]byte, 80))
	f.Add(append(append(initReq[:], ping[0][:]...), ping[1][:]...))
	cbor := frame(1, hidCBOR, []byte{cmdGetInfo})
	f.Add(append(initReq[:], cbor[0][:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		k := New(Options{})
		c := k.NewConn(func([ReportSize]byte) error { return nil })
		for len(b) > 0 {
			var r [ReportSize]byte
			n := copy(r[:], b)
			b = b[n:]
			c.HandleReport(r)
		}
		c.Close()
	})
}

func FuzzCBORRequest(f *testing.F) {
	mc, _ := encMode.Marshal(makeCredentialReq{ClientDataHash: make([]byte, 32), RP: rpEntity{ID: "x"},
		User: userEntity{ID: []byte{1}}, Params: []credParam{{Alg: algES256, Type: "public-key"}}})
	ga, _ := encMode.Marshal(getAssertionReq{RPID: "x", ClientDataHash: make([]byte, 32)})
	pin, _ := encMode.Marshal(clientPINReq{Protocol: 2, SubCommand: subGetKeyAgreement})
	f.Add(append([]byte{cmdMakeCredential}, mc...))
	f.Add(append([]byte{cmdGetAssertion}, ga...))
	f.Add(append([]byte{cmdClientPIN}, pin...))
	f.Add([]byte{cmdGetInfo})
	f.Fuzz(func(t *testing.T, b []byte) {
		k := New(Options{})
		resp := k.HandleCBOR(context.Background(), b, func() {})
		if len(resp) == 0 {
			t.Fatal("empty response")
		}
	})
}
