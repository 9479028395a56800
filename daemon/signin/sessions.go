package signin

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"time"
)

// Reasons a session ends, in session-ended events.
const (
	EndSignOut      = "sign-out"
	EndExpired      = "expired"
	EndRemoved      = "authenticator-removed"
	EndShutdown     = "shutdown"
	EndForgotten    = "forget"
	EndUnregistered = "registration-removed"
	EndNotOpened    = "not-opened"
	EndLoggedOut    = "logged-out"
)

// Session is one sign-in session.
type Session struct {
	ID            string
	User          string
	Authenticator string
	StartedAt     time.Time
	ExpiresAt     time.Time
	// Pending is true until the session is opened (Sessions.Open); a
	// pending session ends by itself with reason not-opened.
	Pending bool
	// Login is the systemd-logind session the sign-in opened, when known.
	Login Login
}

// Login identifies a systemd-logind session, by its id (XDG_SESSION_ID) or
// by a process in it; the removal policy locks or ends it.
type Login struct {
	Session string
	PID     int
}

// Known reports whether l names a login session at all.
func (l Login) Known() bool { return l.Session != "" || l.PID != 0 }

// Sessions is the in-memory table of sign-in sessions (R8): a session
// outlives the connection that opened it and ends on sign-out, expiry, card
// removal (by policy) or daemon stop. Nothing of it is written to disk.
type Sessions struct {
	onEnd func(s Session, reason string)

	mu     sync.Mutex
	byID   map[string]*session
	closed bool // after Close: no session starts
}

type session struct {
	Session
	pin   []byte // cached PIN when signin.cache_pin is on; zeroed when the session ends
	timer *time.Timer
}

// NewSessions returns an empty session table that calls onEnd, outside its
// lock, with each session that ends and the reason (one of the End…
// constants), except for those Close ends.
func NewSessions(onEnd func(Session, string)) *Sessions {
	return &Sessions{onEnd: onEnd, byID: map[string]*session{}}
}

// Start opens a session that ends by itself after lifetime. pin, when not
// nil, is copied and kept for the session. It fails with ErrShuttingDown after Close, so that no
// session outlives the daemon without its session-ended. A pending session
// ends after lifetime with reason not-opened unless Open extends it.
func (t *Sessions) Start(user, authenticator string, lifetime time.Duration, pin []byte, pending bool) (Session, error) {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	now := time.Now().UTC().Truncate(time.Second)
	s := &session{Session: Session{
		ID:            hex.EncodeToString(id),
		User:          user,
		Authenticator: authenticator,
		StartedAt:     now,
		ExpiresAt:     now.Add(lifetime),
		Pending:       pending,
	}}
	reason := EndExpired
	if pending {
		reason = EndNotOpened
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return Session{}, ErrShuttingDown
	}
	if pin != nil {
		s.pin = slices.Clone(pin)
	}
	t.byID[s.ID] = s
	s.timer = time.AfterFunc(lifetime, func() { t.End(s.ID, reason) })
	return s.Session, nil
}

// Open turns a pending session into an open one that lasts lifetime from
// now, and records the login session it belongs to. It reports whether the
// session exists.
func (t *Sessions) Open(id string, lifetime time.Duration, login Login) (Session, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[id]
	if !ok {
		return Session{}, false
	}
	s.timer.Stop()
	s.Pending = false
	s.ExpiresAt = time.Now().UTC().Truncate(time.Second).Add(lifetime)
	s.Login = login
	s.timer = time.AfterFunc(lifetime, func() { t.End(id, EndExpired) })
	return s.Session, true
}

// Close ends every session without announcing them and refuses new ones;
// it returns the ended sessions, oldest first, for the daemon to announce
// as the event bus's last events.
func (t *Sessions) Close() []Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	out := make([]Session, 0, len(t.byID))
	for id, s := range t.byID {
		s.timer.Stop()
		clear(s.pin)
		out = append(out, s.Session)
		delete(t.byID, id)
	}
	sortSessions(out)
	return out
}

// Get returns a session by id.
func (t *Sessions) Get(id string) (Session, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[id]
	if !ok {
		return Session{}, false
	}
	return s.Session, true
}

// End ends one session; it reports whether the session existed.
func (t *Sessions) End(id, reason string) bool {
	t.mu.Lock()
	s, ok := t.byID[id]
	if ok {
		delete(t.byID, id)
		s.timer.Stop()
		clear(s.pin)
	}
	t.mu.Unlock()
	if ok {
		t.onEnd(s.Session, reason)
	}
	return ok
}

// EndWhere ends every session that match selects.
func (t *Sessions) EndWhere(match func(Session) bool, reason string) {
	for _, s := range t.List(match) {
		t.End(s.ID, reason)
	}
}

// List returns the sessions that match selects (all when match is nil),
// oldest first.
func (t *Sessions) List(match func(Session) bool) []Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []Session{}
	for _, s := range t.byID {
		if match == nil || match(s.Session) {
			out = append(out, s.Session)
		}
	}
	sortSessions(out)
	return out
}

// sortSessions orders sessions oldest first.
func sortSessions(ss []Session) {
	slices.SortFunc(ss, func(a, b Session) int {
		return cmp.Or(a.StartedAt.Compare(b.StartedAt), cmp.Compare(a.ID, b.ID))
	})
}

// CachedPIN returns a copy of the PIN cached by a session of user on
// authenticator, or nil. The caller zeroes the copy.
func (t *Sessions) CachedPIN(user, authenticator string) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.byID {
		if s.User == user && s.Authenticator == authenticator && s.pin != nil {
			return slices.Clone(s.pin)
		}
	}
	return nil
}

// DropPINsWhere zeroes and forgets the PINs cached by the sessions that
// match selects (forget, card removal); it returns how many there were.
func (t *Sessions) DropPINsWhere(match func(Session) bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.byID {
		if s.pin != nil && match(s.Session) {
			clear(s.pin)
			s.pin = nil
			n++
		}
	}
	return n
}
