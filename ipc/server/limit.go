package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
)

// Defaults of Limits.
const (
	DefaultMaxConns        = 512
	DefaultMaxConnsPerUser = 32
	DefaultReservedConns   = 64
	DefaultStreamsPerUser  = 8
)

// refuseWriteTimeout bounds the write of the busy answer to a refused
// connection; a client that does not read it is simply closed.
const refuseWriteTimeout = 100 * time.Millisecond

// Limits bound the connections the server holds, so that one local user
// cannot starve the others or the sign-in service (issue #13). A connection
// over a limit is answered busy at once and closed; it never gets a
// goroutine or buffers.
type Limits struct {
	// MaxConns bounds all open connections.
	MaxConns int
	// MaxConnsPerUser bounds the open connections of one uid that is not
	// Reserved.
	MaxConnsPerUser int
	// ReservedConns of MaxConns are kept for peers that Reserved accepts:
	// others are refused once MaxConns-ReservedConns connections are open.
	ReservedConns int
	// StreamsPerUser bounds the open streams (StreamJSONLines) of one uid
	// that is not Reserved.
	StreamsPerUser int
	// Reserved reports whether a peer may use the reserve and has no
	// per-user bound (root, the sign-in service, admins). Nil means root.
	Reserved func(Peer) bool
}

// withDefaults fills unset fields of l.
func (l Limits) withDefaults() Limits {
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxConnsPerUser <= 0 {
		l.MaxConnsPerUser = DefaultMaxConnsPerUser
	}
	if l.ReservedConns <= 0 {
		l.ReservedConns = min(DefaultReservedConns, l.MaxConns/2)
	}
	if l.StreamsPerUser <= 0 {
		l.StreamsPerUser = DefaultStreamsPerUser
	}
	if l.Reserved == nil {
		l.Reserved = func(p Peer) bool { return p.UID == 0 }
	}
	return l
}

// connLimiter counts open connections, in all and per uid, and open
// streams per uid.
type connLimiter struct {
	limits  Limits
	mu      sync.Mutex
	open    int
	perUID  map[uint32]int
	streams map[uint32]int
	// refusals per uid since they were last logged.
	refusals map[uint32]refusals
}

// refusals counts refused connections of one uid since logged.
type refusals struct {
	count  int
	logged time.Time
}

func newConnLimiter(l Limits) *connLimiter {
	return &connLimiter{limits: l.withDefaults(), perUID: map[uint32]int{}, streams: map[uint32]int{}, refusals: map[uint32]refusals{}}
}

// openStream takes a stream slot for p, or reports false; done gives it
// back.
func (c *connLimiter) openStream(p Peer) (done func(), ok bool) {
	if c.limits.Reserved(p) {
		return func() {}, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams[p.UID] >= c.limits.StreamsPerUser {
		return nil, false
	}
	c.streams[p.UID]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.streams[p.UID]--; c.streams[p.UID] <= 0 {
			delete(c.streams, p.UID)
		}
	}, true
}

// admit takes a slot for a connection of p, or reports false.
func (c *connLimiter) admit(p Peer, reserved bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.open >= c.limits.MaxConns:
		return false
	case !reserved && c.open >= c.limits.MaxConns-c.limits.ReservedConns:
		return false
	case !reserved && c.perUID[p.UID] >= c.limits.MaxConnsPerUser:
		return false
	}
	c.open++
	c.perUID[p.UID]++
	return true
}

// refused counts a refused connection of uid and reports, at most once per
// refuseLogEvery, how many were refused since the last report.
func (c *connLimiter) refused(uid uint32, now time.Time) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.refusals[uid]
	r.count++
	if now.Sub(r.logged) < refuseLogEvery {
		c.refusals[uid] = r
		return 0, false
	}
	if len(c.refusals) > 1024 {
		clear(c.refusals)
	}
	c.refusals[uid] = refusals{logged: now}
	return r.count, true
}

// release gives back a slot taken by admit.
func (c *connLimiter) release(p Peer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
	if c.perUID[p.UID]--; c.perUID[p.UID] <= 0 {
		delete(c.perUID, p.UID)
	}
}

// limitListener reads each accepted connection's peer credentials and
// admits it under the limits; the others get the busy answer and are closed.
type limitListener struct {
	net.Listener
	lim *connLimiter
	log *slog.Logger
	// peerOf reads a connection's credentials (Config.PeerOf).
	peerOf func(net.Conn) (Peer, error)
}

// busyAnswer is what a refused connection reads before it is closed: the
// busy envelope, as a handler would write it.
var busyAnswer = func() []byte {
	e := ipc.Errorf(ipc.CodeBusy, "hwauthd has too many connections open for your account; close some and try again in a moment")
	body, _ := json.Marshal(e)
	body = append(body, '\n')
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"+
		"Connection: close\r\nContent-Length: %d\r\n\r\n%s", e.Status(), http.StatusText(e.Status()), len(body), body)
}()

// Accept returns the next admitted connection as a *peerConn.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p, err := l.peerOf(c)
		if err != nil {
			// Every route would refuse it; it gets no slot.
			l.log.Warn("connection refused", "err", err)
			_ = c.Close()
			continue
		}
		reserved := l.lim.limits.Reserved(p)
		if l.lim.admit(p, reserved) {
			return &peerConn{Conn: c, peer: p, lim: l.lim}, nil
		}
		l.refuse(c, p)
	}
}

// refuseLogEvery is how often refusals of one uid are logged: a flood
// must not flood the journal too.
const refuseLogEvery = time.Minute

// refuse answers busy without reading the request and closes c.
func (l *limitListener) refuse(c net.Conn, p Peer) {
	_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	_, _ = c.Write(busyAnswer)
	_ = c.Close()
	if n, ok := l.lim.refused(p.UID, time.Now()); ok {
		l.log.Warn("refusing connections over the limits", "uid", p.UID, "pid", p.PID, "refused", n)
	}
}

// peerConn is an admitted connection with the credentials read at accept;
// closing it gives back its slot once.
type peerConn struct {
	net.Conn
	peer  Peer
	lim   *connLimiter
	once  sync.Once
	reads readLog
}

// Read reads from the connection and remembers the buffer it filled, so
// that a secret-carrying body can be zeroed where it was read (wipe.go).
func (c *peerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.reads.add(p[:n])
	}
	return n, err
}

// CloseWrite ends the connection's writing side, when it has one.
func (c *peerConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection and releases its slot.
func (c *peerConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.lim != nil {
			c.lim.release(c.peer)
		}
	})
	return err
}
