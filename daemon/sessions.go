package daemon

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
)

// Reasons a session ends, in session-ended events.
const (
	endSignOut     = "sign-out"
	endExpired     = "expired"
	endRemoved     = "authenticator-removed"
	endShutdown    = "shutdown"
	endForgotten   = "forget"
	endUnregistred = "registration-removed"
)

// sessions is the in-memory table of sign-in sessions (R8): a session
// outlives the connection that opened it and ends on sign-out, expiry, card
// removal (by policy) or daemon stop. Nothing of it is written to disk.
type sessions struct {
	onEnd func(s ipc.Session, reason string)

	mu   sync.Mutex
	byID map[string]*session
}

type session struct {
	ipc.Session
	pin   []byte // cached PIN when signin.cache_pin is on; zeroed when the session ends
	timer *time.Timer
}

func newSessions(onEnd func(ipc.Session, string)) *sessions {
	return &sessions{onEnd: onEnd, byID: map[string]*session{}}
}

// start opens a session that ends by itself after lifetime. pin, when not
// nil, is copied and kept for the session.
func (t *sessions) start(user, authenticator string, lifetime time.Duration, pin []byte) ipc.Session {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	now := time.Now().UTC().Truncate(time.Second)
	s := &session{Session: ipc.Session{
		ID:            hex.EncodeToString(id),
		User:          user,
		Authenticator: authenticator,
		StartedAt:     now,
		ExpiresAt:     now.Add(lifetime),
	}}
	if pin != nil {
		s.pin = slices.Clone(pin)
	}
	t.mu.Lock()
	t.byID[s.ID] = s
	s.timer = time.AfterFunc(lifetime, func() { t.end(s.ID, endExpired) })
	t.mu.Unlock()
	return s.Session
}

// get returns a session by id.
func (t *sessions) get(id string) (ipc.Session, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[id]
	if !ok {
		return ipc.Session{}, false
	}
	return s.Session, true
}

// end ends one session; it reports whether the session existed.
func (t *sessions) end(id, reason string) bool {
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

// endWhere ends every session that match selects.
func (t *sessions) endWhere(match func(ipc.Session) bool, reason string) {
	for _, s := range t.list(match) {
		t.end(s.ID, reason)
	}
}

// list returns the sessions that match selects (all when match is nil),
// oldest first.
func (t *sessions) list(match func(ipc.Session) bool) []ipc.Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []ipc.Session{}
	for _, s := range t.byID {
		if match == nil || match(s.Session) {
			out = append(out, s.Session)
		}
	}
	slices.SortFunc(out, func(a, b ipc.Session) int {
		return cmp.Or(a.StartedAt.Compare(b.StartedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// cachedPIN returns a copy of the PIN cached by a session of user on
// authenticator, or nil. The caller zeroes the copy.
func (t *sessions) cachedPIN(user, authenticator string) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.byID {
		if s.User == user && s.Authenticator == authenticator && s.pin != nil {
			return slices.Clone(s.pin)
		}
	}
	return nil
}

// dropPINsWhere zeroes and forgets the PINs cached by the sessions that
// match selects (forget, card removal).
func (t *sessions) dropPINsWhere(match func(ipc.Session) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.byID {
		if match(s.Session) {
			clear(s.pin)
			s.pin = nil
		}
	}
}
