package pcsc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebfe/scard"
)

// EventType says what an Event reports.
type EventType int

// Event types. A monitor reports ServiceUp and then a snapshot (ReaderAdded
// for every reader, CardInserted for every card) whenever it (re)connects to
// pcscd, and ServiceDown, CardRemoved and ReaderRemoved for everything it knew
// when pcscd goes away.
const (
	ReaderAdded EventType = iota + 1
	ReaderRemoved
	CardInserted
	CardRemoved
	ServiceDown
	ServiceUp
)

var eventTypeNames = map[EventType]string{
	ReaderAdded: "reader-added", ReaderRemoved: "reader-removed",
	CardInserted: "card-inserted", CardRemoved: "card-removed",
	ServiceDown: "service-down", ServiceUp: "service-up",
}

// String returns the event type's name in the API's spelling ("card-inserted").
func (t EventType) String() string {
	if s, ok := eventTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one change seen by a Monitor. Reader is empty for ServiceDown and
// ServiceUp; ATR is set for CardInserted.
type Event struct {
	Type   EventType
	Reader string
	ATR    []byte
	Time   time.Time
}

// ReaderState is a reader as the Monitor last saw it.
type ReaderState struct {
	Name        string
	CardPresent bool
	ATR         []byte
}

// pnpReader is pcsc-lite's pseudo reader whose state changes when a reader is
// added or removed.
const pnpReader = `\\?PnP?\Notification`

// Backoff between attempts to reach pcscd while it is absent.
const (
	backoffMin = 50 * time.Millisecond
	backoffMax = 5 * time.Second
)

// cancelRetry is how often a cancelled monitor repeats SCardCancel: pcsc-lite
// drops a cancel that arrives before SCardGetStatusChange has started waiting.
const cancelRetry = 20 * time.Millisecond

// unknownReaderStorm is how many SCARD_E_UNKNOWN_READER answers in a row make
// the monitor give up on the current context and start over, as when pcscd
// is going away.
const unknownReaderStorm = 5

// Monitor watches pcscd's readers and cards with blocking
// SCardGetStatusChange calls (no polling) and reports changes as Events. One
// Monitor runs one Run at a time; Readers and Up may be called concurrently.
//
// ebfe/scard keeps the C string of a reader name alive only until the next
// status call with the same name in the process, so a process should run one
// Monitor.
type Monitor struct {
	logger  *slog.Logger
	running atomic.Bool

	mu      sync.Mutex
	up      bool
	readers map[string]ReaderState

	enumerated     chan struct{} // closed by enumerateOnce
	enumeratedOnce sync.Once
}

// NewMonitor returns a Monitor that logs to logger (slog.Default when nil).
func NewMonitor(logger *slog.Logger) *Monitor {
	if logger == nil {
		logger = slog.Default()
	}
	return &Monitor{logger: logger, readers: map[string]ReaderState{}, enumerated: make(chan struct{})}
}

// Enumerated returns a channel closed once Run has sent the events of its
// first look at pcscd (ServiceUp and the snapshot), or has failed to reach
// pcscd once. A receiver that has taken every event sent before the channel
// closed has seen the first enumeration.
func (m *Monitor) Enumerated() <-chan struct{} { return m.enumerated }

func (m *Monitor) enumerateOnce() { m.enumeratedOnce.Do(func() { close(m.enumerated) }) }

// Up reports whether the monitor is connected to pcscd.
func (m *Monitor) Up() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.up
}

// ReaderCount returns how many readers Readers would list, without copying
// them.
func (m *Monitor) ReaderCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.readers)
}

// Readers returns the readers as last seen, sorted by name.
func (m *Monitor) Readers() []ReaderState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ReaderState, 0, len(m.readers))
	for _, r := range m.readers {
		r.ATR = bytes.Clone(r.ATR)
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b ReaderState) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Run watches readers and cards and sends Events to events until ctx ends,
// then returns nil; it fails at once if another Run of m is active. Sends
// block, so the receiver must keep reading. When pcscd is absent or goes
// away, Run reports it and tries again with a capped backoff; cancelling ctx
// wakes the blocked wait through SCardCancel.
func (m *Monitor) Run(ctx context.Context, events chan<- Event) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("pcsc monitor: Run is already running")
	}
	defer m.running.Store(false)
	defer m.setDown()
	backoff := backoffMin
	for {
		connected, err := m.session(ctx, events)
		if ctx.Err() != nil {
			return nil
		}
		m.enumerateOnce()
		if connected {
			backoff = backoffMin
		}
		m.logger.Warn("pcscd unavailable", "err", err, "retry_in", backoff)
		if m.serviceLost(ctx, events) != nil {
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// serviceLost reports ServiceDown once per outage, then CardRemoved and
// ReaderRemoved for everything that was there.
func (m *Monitor) serviceLost(ctx context.Context, events chan<- Event) error {
	m.mu.Lock()
	wasUp := m.up
	m.up = false
	m.mu.Unlock()
	if !wasUp {
		return nil
	}
	if err := send(ctx, events, Event{Type: ServiceDown}); err != nil {
		return err
	}
	for _, r := range m.Readers() {
		if err := m.removeReader(ctx, events, r.Name); err != nil {
			return err
		}
	}
	return nil
}

func (m *Monitor) setDown() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.up = false
	clear(m.readers)
}

// session is one connection to pcscd: establish a context, report the
// snapshot, then wait for changes until ctx ends (nil error) or pcscd fails.
// connected says whether the context was established.
func (m *Monitor) session(ctx context.Context, events chan<- Event) (connected bool, err error) {
	sctx, err := scard.EstablishContext()
	if err != nil {
		return false, wrapErr("establish context", err)
	}
	defer sctx.Release()
	stop := cancelWhenDone(ctx, sctx)
	defer stop()

	w := &watch{m: m, sctx: sctx, events: events}
	if err := w.start(ctx); err != nil {
		return true, err
	}
	m.enumerateOnce()
	return true, w.loop(ctx)
}

// cancelWhenDone calls SCardCancel on sctx when ctx ends, repeating it until
// stop is called because a cancel before the wait starts is lost. stop waits
// for the helper goroutine, so sctx may be released after it.
func cancelWhenDone(ctx context.Context, sctx *scard.Context) (stop func()) {
	stopc, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-stopc:
			return
		case <-ctx.Done():
		}
		t := time.NewTicker(cancelRetry)
		defer t.Stop()
		for {
			_ = sctx.Cancel()
			select {
			case <-stopc:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(stopc); <-done }
}

// send delivers ev, stamped with the current time, unless ctx ends first.
func send(ctx context.Context, events chan<- Event, ev Event) error {
	ev.Time = time.Now()
	select {
	case events <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addReader records a reader and reports ReaderAdded, then CardInserted when
// it holds a card.
func (m *Monitor) addReader(ctx context.Context, events chan<- Event, rs ReaderState) error {
	m.mu.Lock()
	m.readers[rs.Name] = ReaderState{Name: rs.Name}
	m.mu.Unlock()
	if err := send(ctx, events, Event{Type: ReaderAdded, Reader: rs.Name}); err != nil {
		return err
	}
	if rs.CardPresent {
		return m.cardInserted(ctx, events, rs.Name, rs.ATR)
	}
	return nil
}

// removeReader reports CardRemoved when the reader held a card, then
// ReaderRemoved, and forgets the reader.
func (m *Monitor) removeReader(ctx context.Context, events chan<- Event, name string) error {
	m.mu.Lock()
	r, ok := m.readers[name]
	m.mu.Unlock()
	if !ok {
		return nil
	}
	if r.CardPresent {
		if err := m.cardRemoved(ctx, events, name); err != nil {
			return err
		}
	}
	m.mu.Lock()
	delete(m.readers, name)
	m.mu.Unlock()
	return send(ctx, events, Event{Type: ReaderRemoved, Reader: name})
}

func (m *Monitor) cardInserted(ctx context.Context, events chan<- Event, name string, atr []byte) error {
	m.mu.Lock()
	m.readers[name] = ReaderState{Name: name, CardPresent: true, ATR: bytes.Clone(atr)}
	m.mu.Unlock()
	return send(ctx, events, Event{Type: CardInserted, Reader: name, ATR: bytes.Clone(atr)})
}

func (m *Monitor) cardRemoved(ctx context.Context, events chan<- Event, name string) error {
	m.mu.Lock()
	m.readers[name] = ReaderState{Name: name}
	m.mu.Unlock()
	return send(ctx, events, Event{Type: CardRemoved, Reader: name})
}

func (m *Monitor) markUp(ctx context.Context, events chan<- Event) error {
	m.mu.Lock()
	m.up = true
	m.mu.Unlock()
	return send(ctx, events, Event{Type: ServiceUp})
}
