// Package events is hwauthd's event bus: the daemon publishes what happens
// (readers, cards, keys, PIN blocks, sessions, registrations) and every
// GET /v1/events stream subscribes. Each subscriber starts with a snapshot of
// the present state taken atomically with its registration, or resumes from a
// sequence number out of a bounded history; a subscriber that falls behind is
// told ("dropped") and cut off, so Publish never blocks (STYLE.md item 9).
//
// Lock order: Bus.mu is taken by Publish, Do, Subscribe and Close and is never
// held while calling out, except for the snapshot and Do functions, which
// must not block or call the Bus.
package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
)

// ErrClosed is returned by Subscribe after Close.
var ErrClosed = errors.New("event bus closed")

// Bus fans published events out to subscribers and keeps a history ring.
type Bus struct {
	mu      sync.Mutex
	seq     uint64
	ring    []ipc.Event // the last len(ring) events, oldest at ring[start]
	start   int
	history int
	buffer  int
	subs    map[*Subscription]struct{}
	closed  bool
}

// New returns a bus that buffers up to bufferPerSubscriber live events per
// subscriber and keeps the last history events for resuming.
func New(bufferPerSubscriber, history int) *Bus {
	return &Bus{buffer: max(bufferPerSubscriber, 1), history: max(history, 0), subs: map[*Subscription]struct{}{}}
}

// Publish stamps e with the next sequence number (from 1) and the time (when
// unset), records it in the history and queues it for every subscriber whose
// filter accepts it. It never blocks. It returns the stamped event.
func (b *Bus) Publish(e ipc.Event) ipc.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.publishLocked(e)
}

// Do runs fn under the bus lock with a publish function, so that a change to
// the daemon's state and the events telling of it are atomic with respect to
// the snapshot of a new subscriber: nothing is missed or seen twice. fn must
// be quick and must not call the Bus.
func (b *Bus) Do(fn func(publish func(ipc.Event) ipc.Event)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fn(b.publishLocked)
}

// publishLocked is Publish with b.mu held.
func (b *Bus) publishLocked(e ipc.Event) ipc.Event {
	b.seq++
	e.Seq = b.seq
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	b.remember(e)
	for s := range b.subs {
		if s.filter == nil || s.filter(e) {
			b.deliverLocked(s, e)
		}
	}
	return e
}

// remember appends e to the history ring.
func (b *Bus) remember(e ipc.Event) {
	if b.history == 0 {
		return
	}
	if len(b.ring) < b.history {
		b.ring = append(b.ring, e)
		return
	}
	b.ring[b.start] = e
	b.start = (b.start + 1) % b.history
}

// deliverLocked queues e for s, or drops s when its buffer is full: the last
// free slot is reserved for the dropped event.
func (b *Bus) deliverLocked(s *Subscription, e ipc.Event) {
	if len(s.ch) < cap(s.ch)-1 {
		s.ch <- e
		s.last = e.Seq
		return
	}
	s.ch <- ipc.Event{
		Seq:    s.last,
		Time:   time.Now().UTC(),
		Type:   ipc.EventDropped,
		Reason: fmt.Sprintf("too slow to read events; resume with since=%d", s.last),
	}
	b.removeLocked(s)
}

// removeLocked unregisters s and closes its channel.
func (b *Bus) removeLocked(s *Subscription) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	close(s.ch)
}

// Subscribe registers a subscriber. With since == 0 it first receives the
// events returned by snapshot (the present state, stamped Seq 0; snapshot
// may be nil), called under the same lock that registers the subscriber.
// With since > 0 it first receives the remembered events after since, or
// Subscribe fails with an *ipc.Error events_expired when they are no longer
// all kept (or since is from before a restart). Either way a snapshot-done
// event whose Seq is the last published one follows, then live events.
// filter (nil for all) hides events from this subscriber.
func (b *Bus) Subscribe(since uint64, filter func(ipc.Event) bool, snapshot func() []ipc.Event) (*Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	var first []ipc.Event
	if since > 0 {
		replay, err := b.replayLocked(since)
		if err != nil {
			return nil, err
		}
		first = replay
	} else if snapshot != nil {
		first = stampSnapshot(snapshot())
	}
	first = keep(first, filter)
	first = append(first, ipc.Event{Seq: b.seq, Time: time.Now().UTC(), Type: ipc.EventSnapshotDone})
	s := &Subscription{bus: b, filter: filter, ch: make(chan ipc.Event, len(first)+b.buffer+1), last: b.seq}
	for _, e := range first {
		s.ch <- e
	}
	b.subs[s] = struct{}{}
	return s, nil
}

// replayLocked returns the remembered events after since.
func (b *Bus) replayLocked(since uint64) ([]ipc.Event, error) {
	oldest := b.seq - uint64(len(b.ring)) + 1
	if since > b.seq {
		return nil, &ipc.Error{Code: ipc.CodeEventsExpired,
			Message: fmt.Sprintf("event %d has not happened yet: the latest is %d (the daemon restarted since?); subscribe again without since", since, b.seq)}
	}
	if since+1 < oldest {
		return nil, &ipc.Error{Code: ipc.CodeEventsExpired,
			Message: fmt.Sprintf("events after %d are no longer kept (kept: %d to %d); subscribe again without since", since, oldest, b.seq)}
	}
	out := make([]ipc.Event, 0, b.seq-since)
	for i := range b.ring {
		e := b.ring[(b.start+i)%len(b.ring)]
		if e.Seq > since {
			out = append(out, e)
		}
	}
	return out, nil
}

// stampSnapshot marks snapshot events as state (Seq 0) with a time.
func stampSnapshot(evs []ipc.Event) []ipc.Event {
	now := time.Now().UTC()
	for i := range evs {
		evs[i].Seq = 0
		if evs[i].Time.IsZero() {
			evs[i].Time = now
		}
	}
	return evs
}

// keep returns the events that filter accepts.
func keep(evs []ipc.Event, filter func(ipc.Event) bool) []ipc.Event {
	if filter == nil {
		return evs
	}
	out := evs[:0:0]
	for _, e := range evs {
		if filter(e) {
			out = append(out, e)
		}
	}
	return out
}

// Close ends every subscription (their channels close without a dropped
// event) and refuses new ones; for daemon shutdown.
func (b *Bus) Close() { b.CloseWith(nil) }

// CloseWith publishes final, the last events (every session's session-ended
// at shutdown), then closes the bus like Close. Every subscriber still
// registered receives each final event its filter accepts, after what is
// already queued for it, whatever its buffer: these events are kept beside
// the channel, never dropped.
func (b *Bus) CloseWith(final []ipc.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	stamped := make([]ipc.Event, len(final))
	for i, e := range final {
		b.seq++
		e.Seq = b.seq
		if e.Time.IsZero() {
			e.Time = time.Now().UTC()
		}
		b.remember(e)
		stamped[i] = e
	}
	for s := range b.subs {
		s.tail = keep(slices.Clone(stamped), s.filter)
		b.removeLocked(s)
	}
}

// Subscription is one subscriber's queue of events.
type Subscription struct {
	bus    *Bus
	filter func(ipc.Event) bool
	ch     chan ipc.Event
	last   uint64      // Seq of the last live event queued; guarded by bus.mu
	tail   []ipc.Event // final events, read after ch closes (CloseWith)
}

// C returns the channel of events. It closes after a dropped event, on
// Close, or when the bus closes.
func (s *Subscription) C() <-chan ipc.Event { return s.ch }

// Next waits for the next event. It returns io.EOF when the subscription has
// ended and ctx.Err() when ctx ends first.
func (s *Subscription) Next(ctx context.Context) (ipc.Event, error) {
	select {
	case e, ok := <-s.ch:
		if !ok {
			return s.nextFinal()
		}
		return e, nil
	case <-ctx.Done():
		return ipc.Event{}, ctx.Err()
	}
}

// nextFinal returns the next final event once the channel has closed, or
// io.EOF. The tail was set before the channel closed, so reading it after
// seeing the close needs no lock; only the reader goroutine consumes it.
func (s *Subscription) nextFinal() (ipc.Event, error) {
	if len(s.tail) == 0 {
		return ipc.Event{}, io.EOF
	}
	e := s.tail[0]
	s.tail = s.tail[1:]
	return e, nil
}

// Close unsubscribes; the channel closes. It is safe to call more than once.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.bus.removeLocked(s)
}
