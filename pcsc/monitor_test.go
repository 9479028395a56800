package pcsc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/testenv/pcscenv"
)

const eventTimeout = 5 * time.Second

// runMonitor starts a Monitor on an unbuffered channel and stops it (waiting
// for Run to return) when the test ends.
func runMonitor(t *testing.T) (*Monitor, <-chan Event) {
	t.Helper()
	m := NewMonitor(slog.New(slog.NewTextHandler(io.Discard, nil)))
	events := make(chan Event)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx, events) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return m, events
}

// next returns the next event, failing the test after eventTimeout.
func next(t *testing.T, events <-chan Event) Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(eventTimeout):
		t.Fatalf("no event within %v", eventTimeout)
		return Event{}
	}
}

// expectEvents reads events and checks that they are exactly want, in order
// (Type and Reader), returning them.
func expectEvents(t *testing.T, events <-chan Event, want ...Event) []Event {
	t.Helper()
	got := make([]Event, 0, len(want))
	for i, w := range want {
		ev := next(t, events)
		got = append(got, ev)
		if ev.Type != w.Type || ev.Reader != w.Reader {
			t.Fatalf("event %d = %v %q, want %v %q (so far %s)", i, ev.Type, ev.Reader, w.Type, w.Reader, describe(got))
		}
		if ev.Time.IsZero() {
			t.Fatalf("event %d has no time", i)
		}
	}
	return got
}

func describe(evs []Event) string {
	var b bytes.Buffer
	for _, ev := range evs {
		fmt.Fprintf(&b, "[%v %q % X] ", ev.Type, ev.Reader, ev.ATR)
	}
	return b.String()
}

// expectSnapshot checks the start-up events with both readers empty.
func expectSnapshot(t *testing.T, p *pcscenv.PCSC, events <-chan Event) {
	t.Helper()
	expectEvents(t, events,
		Event{Type: ServiceUp},
		Event{Type: ReaderAdded, Reader: p.ReaderName(0)},
		Event{Type: ReaderAdded, Reader: p.ReaderName(1)})
}

func TestMonitorSnapshotInsertRemove(t *testing.T) {
	p := pcscenv.PCSCD(t)
	m, events := runMonitor(t)
	expectSnapshot(t, p, events)
	if !m.Up() {
		t.Fatal("Up() = false after ServiceUp")
	}
	if rs := m.Readers(); len(rs) != 2 || m.ReaderCount() != 2 || rs[0].Name != p.ReaderName(0) || rs[0].CardPresent {
		t.Fatalf("Readers() = %+v (ReaderCount %d), want two empty readers", rs, m.ReaderCount())
	}

	card := insertCard(t, p, 0, testATR, nil)
	ev := expectEvents(t, events, Event{Type: CardInserted, Reader: p.ReaderName(0)})[0]
	if !bytes.Equal(ev.ATR, testATR) {
		t.Fatalf("CardInserted ATR = % X, want % X", ev.ATR, testATR)
	}
	if rs := m.Readers(); !rs[0].CardPresent || !bytes.Equal(rs[0].ATR, testATR) || rs[1].CardPresent {
		t.Fatalf("Readers() after insertion = %+v", rs)
	}

	card.remove()
	expectEvents(t, events, Event{Type: CardRemoved, Reader: p.ReaderName(0)})
	if rs := m.Readers(); rs[0].CardPresent || rs[0].ATR != nil {
		t.Fatalf("Readers() after removal = %+v", rs)
	}
}

func TestMonitorSnapshotListsPresentCard(t *testing.T) {
	p := pcscenv.PCSCD(t)
	atr := []byte{0x3B, 0x80, 0x80, 0x01, 0x01}
	insertCard(t, p, 1, atr, nil)
	waitCard(t, p.ReaderName(1), true)
	_, events := runMonitor(t)
	got := expectEvents(t, events,
		Event{Type: ServiceUp},
		Event{Type: ReaderAdded, Reader: p.ReaderName(0)},
		Event{Type: ReaderAdded, Reader: p.ReaderName(1)},
		Event{Type: CardInserted, Reader: p.ReaderName(1)})
	if !bytes.Equal(got[3].ATR, atr) {
		t.Fatalf("snapshot ATR = % X, want % X", got[3].ATR, atr)
	}
}

// The monitor is held up (nobody reads its event for the card inserted in
// reader 1) while the card in reader 0 is pulled and another inserted; when
// it goes on, it must report both, from the event counter.
func TestMonitorRemoveAndReinsertWhileBusy(t *testing.T) {
	p := pcscenv.PCSCD(t)
	r0, r1 := p.ReaderName(0), p.ReaderName(1)
	_, events := runMonitor(t)
	expectSnapshot(t, p, events)
	first := insertCard(t, p, 0, testATR, nil)
	expectEvents(t, events, Event{Type: CardInserted, Reader: r0})

	insertCard(t, p, 1, testATR, nil)
	waitCard(t, r1, true) // the monitor now blocks sending CardInserted(r1)
	first.remove()
	waitCard(t, r0, false)
	otherATR := []byte{0x3B, 0x81, 0x80, 0x01, 0x80, 0x80}
	insertCard(t, p, 0, otherATR, nil)
	waitCard(t, r0, true)

	var got []Event
	for range 3 {
		got = append(got, next(t, events))
	}
	var forR0 []Event
	sawR1 := false
	for _, ev := range got {
		switch {
		case ev.Reader == r1 && ev.Type == CardInserted:
			sawR1 = true
		case ev.Reader == r0:
			forR0 = append(forR0, ev)
		}
	}
	if !sawR1 || len(forR0) != 2 || forR0[0].Type != CardRemoved || forR0[1].Type != CardInserted ||
		!bytes.Equal(forR0[1].ATR, otherATR) {
		t.Fatalf("events = %s; want CardInserted for %s and, for %s, CardRemoved then CardInserted with % X",
			describe(got), r1, r0, otherATR)
	}
}

// readerChanged must report a removal and reinsertion that happened between
// two waits, which only the event counter in dwEventState reveals.
func TestReaderChangedEventCounter(t *testing.T) {
	const name = "R 00 00"
	present := scard.StatePresent | scard.StateInuse
	cases := []struct {
		name         string
		wasPresent   bool
		current, evt scard.StateFlag
		want         []EventType
	}{
		{"reinserted", true, present | 3<<16, present | scard.StateChanged | 5<<16, []EventType{CardRemoved, CardInserted}},
		{"same card", true, present | 3<<16, present | scard.StateChanged | 3<<16, nil},
		{"inserted", false, scard.StateEmpty | 2<<16, present | scard.StateChanged | 3<<16, []EventType{CardInserted}},
		{"removed", true, present | 3<<16, scard.StateEmpty | scard.StateChanged | 4<<16, []EventType{CardRemoved}},
		{"mute card", false, scard.StateEmpty, present | scard.StateMute | scard.StateChanged | 1<<16, nil},
		{"reader gone", true, present, scard.StateUnknown | scard.StateChanged, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMonitor(nil)
			m.readers[name] = ReaderState{Name: name, CardPresent: tc.wasPresent}
			events := make(chan Event, 4)
			w := &watch{m: m, events: events}
			st := scard.ReaderState{Reader: name, CurrentState: tc.current, EventState: tc.evt, Atr: testATR}
			if err := w.readerChanged(context.Background(), &st); err != nil {
				t.Fatal(err)
			}
			close(events)
			var got []EventType
			for ev := range events {
				got = append(got, ev.Type)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("events = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMonitorCancelReturnsPromptly(t *testing.T) {
	p := pcscenv.PCSCD(t)
	before := runtime.NumGoroutine()
	m := NewMonitor(nil)
	events := make(chan Event, 16)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx, events) }()
	expectSnapshot(t, p, events)

	start := time.Now()
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return within 1s of cancel")
	}
	if d := time.Since(start); d >= time.Second {
		t.Fatalf("Run took %v to return", d)
	}
	if m.Up() || len(m.Readers()) != 0 || m.ReaderCount() != 0 {
		t.Fatalf("after Run: Up=%v Readers=%v ReaderCount=%d", m.Up(), m.Readers(), m.ReaderCount())
	}
	waitGoroutines(t, before)
}

// waitGoroutines waits, with a deadline, until no more goroutines run than
// before: Run's helpers have exited.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}

// Killing pcscd is reported as ServiceDown with the removals; an open Card
// fails with a classed error; after pcscd is back, the monitor re-lists and
// sees a new card. This test stops the shared pcscd: it must not run in
// parallel with other tests.
func TestMonitorPCSCDRestart(t *testing.T) {
	p := pcscenv.PCSCD(t)
	m, events := runMonitor(t)
	expectSnapshot(t, p, events)
	insertCard(t, p, 0, testATR, nil)
	expectEvents(t, events, Event{Type: CardInserted, Reader: p.ReaderName(0)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	card, err := Connect(ctx, p.ReaderName(0))
	if err != nil {
		t.Fatal(err)
	}
	defer card.Close()

	p.Kill()
	t.Cleanup(func() {
		if err := p.Start(); err != nil {
			t.Errorf("restart pcscd: %v", err)
		}
	})
	expectEvents(t, events,
		Event{Type: ServiceDown},
		Event{Type: CardRemoved, Reader: p.ReaderName(0)},
		Event{Type: ReaderRemoved, Reader: p.ReaderName(0)},
		Event{Type: ReaderRemoved, Reader: p.ReaderName(1)})
	if m.Up() || len(m.Readers()) != 0 {
		t.Fatalf("while down: Up=%v Readers=%v", m.Up(), m.Readers())
	}
	_, err = card.Transmit(ctx, []byte{0x00, 0xA4, 0x04, 0x00, 0x00})
	if !errors.Is(err, hwerr.ErrUnavailable) && !errors.Is(err, hwerr.ErrRemoved) {
		t.Fatalf("Transmit with pcscd down = %v, want ErrUnavailable or ErrRemoved", err)
	}
	if _, err := Connect(ctx, p.ReaderName(0)); !errors.Is(err, hwerr.ErrUnavailable) {
		t.Fatalf("Connect with pcscd down = %v, want ErrUnavailable", err)
	}

	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	expectSnapshot(t, p, events)
	insertCard(t, p, 1, testATR, nil)
	expectEvents(t, events, Event{Type: CardInserted, Reader: p.ReaderName(1)})
	if !m.Up() {
		t.Fatal("Up() = false after restart")
	}
}

func TestMonitorRunOnce(t *testing.T) {
	pcscenv.PCSCD(t)
	m, events := runMonitor(t)
	next(t, events) // the first Run is up
	if err := m.Run(context.Background(), make(chan Event)); err == nil {
		t.Fatal("a second concurrent Run succeeded")
	}
}
