// Package vicc is the test-only card side of vsmartcard's vpcd reader
// driver, as vsmartcard's own vicc program is: a Slot inserts an emulated
// card (such as the PIV applet pcsc/pivcard with software keys) into a vpcd
// reader of pcscd by connecting to the reader's TCP port, serves it with
// package vpcd's protocol, and removes it by disconnecting. The tests, the
// emulated card program pcsc/pcsctest/pivcard, `make demo` and `make bench`
// use it; no shipped program links it.
package vicc

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/pcsc/vpcd"
)

// Slot is a card that can be inserted into a vpcd reader (connected) and
// removed (disconnected), like a card pulled from a physical reader.
type Slot struct {
	card vpcd.Card
	dial func(ctx context.Context) (net.Conn, error)

	mu        sync.Mutex
	reconnect time.Duration // 0: do not reconnect
	session   *session      // nil when removed
}

// session is one insertion: the serving goroutine and how to stop it.
type session struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine has ended
}

// NewSlot returns a removed slot for card; dial connects to the vpcd reader
// (for example net.Dialer.DialContext to 127.0.0.1:PORT).
func NewSlot(card vpcd.Card, dial func(ctx context.Context) (net.Conn, error)) *Slot {
	return &Slot{card: card, dial: dial}
}

// SetReconnect makes an inserted card reconnect after vpcd drops the
// connection (pcscd restarted), waiting backoff between attempts; 0 turns it
// off, so a dropped connection leaves the card removed.
func (s *Slot) SetReconnect(backoff time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reconnect = backoff
}

// ErrInserted is returned by Insert when the card is already inserted.
var ErrInserted = errors.New("vicc: card already inserted")

// Insert connects the card to vpcd and serves it in a goroutine until Remove
// (or, without reconnection, until vpcd closes the connection).
func (s *Slot) Insert(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session != nil && !isDone(s.session.done) {
		return ErrInserted
	}
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(context.Background())
	sess := &session{cancel: cancel, done: make(chan struct{})}
	s.session = sess
	go s.run(sctx, sess, conn)
	return nil
}

// run serves conn and, when reconnection is on, dials again after vpcd
// drops the connection, until the session is cancelled.
func (s *Slot) run(ctx context.Context, sess *session, conn net.Conn) {
	defer close(sess.done)
	for {
		vpcd.Serve(ctx, conn, s.card)
		s.card.PowerOff()
		backoff := s.backoff()
		if backoff == 0 || ctx.Err() != nil {
			return
		}
		conn = s.redial(ctx, backoff)
		if conn == nil {
			return
		}
	}
}

func (s *Slot) backoff() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reconnect
}

// redial dials until it succeeds or ctx ends (nil), waiting backoff before
// each attempt.
func (s *Slot) redial(ctx context.Context, backoff time.Duration) net.Conn {
	t := time.NewTimer(backoff)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if conn, err := s.dial(ctx); err == nil {
			return conn
		}
		t.Reset(backoff)
	}
}

// Remove disconnects the card, waits until serving has stopped and powers
// the card off. Removing a removed card does nothing.
func (s *Slot) Remove() error {
	s.mu.Lock()
	sess := s.session
	s.session = nil
	s.mu.Unlock()
	if sess == nil {
		return nil
	}
	sess.cancel()
	<-sess.done
	s.card.PowerOff()
	return nil
}

// Inserted reports whether the card is connected to vpcd, or reconnecting
// to it.
func (s *Slot) Inserted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.session != nil && !isDone(s.session.done)
}

// Done returns a channel closed when the current insertion ends (Remove, or
// vpcd closing the connection without reconnection); closed already when the
// card is not inserted.
func (s *Slot) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return s.session.done
}

func isDone(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
