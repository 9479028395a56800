package softkey

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
)

// ReportSize is the CTAPHID report size on USB full speed, CTAP 2.1 §11.2.4.
const ReportSize = 64

// CTAPHID commands and errors, CTAP 2.1 §11.2.9.
const (
	hidPing      = 0x01
	hidInit      = 0x06
	hidWink      = 0x08
	hidCBOR      = 0x10
	hidCancel    = 0x11
	hidKeepalive = 0x3B
	hidError     = 0x3F

	hidErrInvalidCmd     = 0x01
	hidErrInvalidLen     = 0x03
	hidErrInvalidSeq     = 0x04
	hidErrChannelBusy    = 0x06
	hidErrInvalidChannel = 0x0B

	broadcastCID = 0xFFFFFFFF
	initPayload  = ReportSize - 7
	contPayload  = ReportSize - 5

	capWink = 0x01
	capCBOR = 0x04
	capNMSG = 0x08

	keepaliveUPNeeded = 2
)

// Conn is one open handle on the key, as one open of a hidraw node: reports
// come in through HandleReport and go out through the send function given to
// NewConn. It is safe for concurrent use.
type Conn struct {
	k    *Key
	wmu  sync.Mutex // serializes send
	send func(report [ReportSize]byte) error

	mu       sync.Mutex
	cids     map[uint32]bool
	asm      *assembly
	inflight uint32
	cancel   context.CancelFunc
	closed   bool
	wg       sync.WaitGroup
}

// assembly is a request being reassembled from continuation packets.
type assembly struct {
	cid  uint32
	cmd  byte
	need int
	seq  byte
	data []byte
}

// NewConn opens a CTAPHID handle whose responses are written with send.
func (k *Key) NewConn(send func(report [ReportSize]byte) error) *Conn {
	return &Conn{k: k, send: send, cids: map[uint32]bool{}}
}

// Close cancels a command in flight and waits for it to end.
func (c *Conn) Close() {
	c.mu.Lock()
	c.closed = true
	if c.cancel != nil {
		c.cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// HandleReport takes one report from the host. A complete CBOR request runs
// in its own goroutine so that CTAPHID_CANCEL can still be read.
func (c *Conn) HandleReport(r [ReportSize]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	cid := binary.BigEndian.Uint32(r[:4])
	if r[4]&0x80 == 0 {
		c.continuationLocked(cid, r)
		return
	}
	cmd, n := r[4]&0x7F, int(binary.BigEndian.Uint16(r[5:7]))
	switch {
	case cid == 0:
		c.errorLocked(cid, hidErrInvalidChannel)
	case cmd == hidInit:
		c.initLocked(cid, n, r[7:])
	case cid == broadcastCID || !c.cids[cid]:
		c.errorLocked(cid, hidErrInvalidChannel)
	case cmd == hidCancel:
		if c.inflight == cid && c.cancel != nil {
			c.cancel()
		}
	case c.cancel != nil || (c.asm != nil && c.asm.cid != cid):
		c.errorLocked(cid, hidErrChannelBusy)
	case n > maxMsgSize:
		c.errorLocked(cid, hidErrInvalidLen)
	default:
		a := &assembly{cid: cid, cmd: cmd, need: n}
		a.data = append(make([]byte, 0, n), r[7:7+min(n, initPayload)]...)
		c.asm = a
		c.completeLocked()
	}
}

// continuationLocked appends a continuation packet (§11.2.4).
func (c *Conn) continuationLocked(cid uint32, r [ReportSize]byte) {
	a := c.asm
	if a == nil || a.cid != cid {
		return // spurious continuation packets are ignored
	}
	if r[4] != a.seq {
		c.asm = nil
		c.errorLocked(cid, hidErrInvalidSeq)
		return
	}
	a.seq++
	a.data = append(a.data, r[5:5+min(a.need-len(a.data), contPayload)]...)
	c.completeLocked()
}

// initLocked answers CTAPHID_INIT (§11.2.9.1.3), allocating a channel when
// asked on the broadcast channel.
func (c *Conn) initLocked(cid uint32, n int, nonce []byte) {
	if n != 8 {
		c.errorLocked(cid, hidErrInvalidLen)
		return
	}
	if c.asm != nil && c.asm.cid == cid {
		c.asm = nil
	}
	newCID := cid
	if cid == broadcastCID {
		newCID = c.k.allocateCID()
		c.cids[newCID] = true
	}
	resp := append([]byte{}, nonce[:8]...)
	resp = binary.BigEndian.AppendUint32(resp, newCID)
	resp = append(resp, 2, 1, 0, 0, capWink|capCBOR|capNMSG)
	c.writeLocked(cid, hidInit, resp)
}

// completeLocked runs the assembled request once all bytes are in.
func (c *Conn) completeLocked() {
	a := c.asm
	if len(a.data) < a.need {
		return
	}
	c.asm = nil
	switch a.cmd {
	case hidPing:
		c.writeLocked(a.cid, hidPing, a.data)
	case hidWink:
		c.writeLocked(a.cid, hidWink, nil)
	case hidCBOR:
		c.startCBORLocked(a.cid, a.data)
	default:
		c.errorLocked(a.cid, hidErrInvalidCmd)
	}
}

// startCBORLocked runs a CTAPHID_CBOR request in the background.
func (c *Conn) startCBORLocked(cid uint32, req []byte) {
	ctx, cancel := context.WithCancel(context.Background())
	c.inflight, c.cancel = cid, cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		keepalive := func() { c.write(cid, hidKeepalive, []byte{keepaliveUPNeeded}) }
		resp := c.k.HandleCBOR(ctx, req, keepalive)
		c.mu.Lock()
		c.inflight, c.cancel = 0, nil
		c.mu.Unlock()
		cancel()
		c.respond(cid, resp)
	}()
}

// respond writes a CBOR response, applying an armed fault.
func (c *Conn) respond(cid uint32, resp []byte) {
	switch c.k.takeFault() {
	case FaultStall:
		return
	case FaultDrop:
		if len(resp) <= initPayload {
			return
		}
		c.wmu.Lock()
		defer c.wmu.Unlock()
		reports := frame(cid, hidCBOR, resp)
		for _, r := range reports[1:] {
			c.send(r)
		}
		return
	case FaultGarbage:
		// Status OK then bytes that are not CBOR (0xff is a stray "break").
		resp = bytes.Repeat([]byte{0xff}, 24)
		resp[0] = statusOK
	}
	c.write(cid, hidCBOR, resp)
}

func (c *Conn) errorLocked(cid uint32, code byte) { c.writeLocked(cid, hidError, []byte{code}) }

// writeLocked is write; the name says c.mu is held (the order is mu, wmu).
func (c *Conn) writeLocked(cid uint32, cmd byte, data []byte) { c.write(cid, cmd, data) }

// write frames a message into reports and sends them.
func (c *Conn) write(cid uint32, cmd byte, data []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, r := range frame(cid, cmd, data) {
		if c.send(r) != nil {
			return
		}
	}
}

// frame splits a message into an initialization packet and continuation
// packets (§11.2.4).
func frame(cid uint32, cmd byte, data []byte) [][ReportSize]byte {
	var out [][ReportSize]byte
	var r [ReportSize]byte
	binary.BigEndian.PutUint32(r[:4], cid)
	r[4] = 0x80 | cmd
	binary.BigEndian.PutUint16(r[5:7], uint16(len(data)))
	n := copy(r[7:], data)
	out = append(out, r)
	for seq := byte(0); n < len(data); seq++ {
		var cr [ReportSize]byte
		binary.BigEndian.PutUint32(cr[:4], cid)
		cr[4] = seq
		n += copy(cr[5:], data[n:])
		out = append(out, cr)
	}
	return out
}

// allocateCID returns a fresh channel id.
func (k *Key) allocateCID() uint32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastCID++
	if k.lastCID == 0 || k.lastCID == broadcastCID {
		k.lastCID = 1
	}
	return k.lastCID
}
