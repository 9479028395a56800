package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
)

// recv returns the next event of s, failing the test after 5 seconds.
func recv(t *testing.T, s *Subscription) ipc.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return e
}

func TestOrderingAndSeq(t *testing.T) {
	b := New(100, 10)
	s, err := b.Subscribe(0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e := recv(t, s); e.Type != ipc.EventSnapshotDone || e.Seq != 0 {
		t.Fatalf("first event %+v, want snapshot-done seq 0", e)
	}
	for i := range 20 {
		got := b.Publish(ipc.Event{Type: ipc.EventCardInserted, Reader: fmt.Sprint(i)})
		if got.Seq != uint64(i+1) || got.Time.IsZero() {
			t.Fatalf("Publish stamped %+v", got)
		}
	}
	for i := range 20 {
		if e := recv(t, s); e.Seq != uint64(i+1) || e.Reader != fmt.Sprint(i) {
			t.Fatalf("event %d = %+v", i, e)
		}
	}
}

func TestFilter(t *testing.T) {
	b := New(10, 10)
	mine := func(e ipc.Event) bool { return e.User == "" || e.User == "alice" }
	s, err := b.Subscribe(0, mine, func() []ipc.Event {
		return []ipc.Event{{Type: ipc.EventSessionStarted, User: "bob"}, {Type: ipc.EventSessionStarted, User: "alice"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Publish(ipc.Event{Type: ipc.EventRegistrationAdded, User: "bob"})
	b.Publish(ipc.Event{Type: ipc.EventRegistrationAdded, User: "alice"})
	want := []string{"alice", "", "alice"}
	for _, u := range want {
		if e := recv(t, s); e.User != u {
			t.Fatalf("got %+v, want user %q", e, u)
		}
	}
}

// TestSnapshotThenLiveConsistent changes a state (present cards) and
// publishes under Do from several goroutines while subscribers join; each
// subscriber's snapshot plus live events must replay to exactly the final
// state, with no event missing or seen twice.
func TestSnapshotThenLiveConsistent(t *testing.T) {
	b := New(100000, 0)
	present := map[string]bool{}
	snapshot := func() []ipc.Event {
		var out []ipc.Event
		for r := range present {
			out = append(out, ipc.Event{Type: ipc.EventCardInserted, Reader: r})
		}
		return out
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 300 {
				reader := fmt.Sprintf("r%d-%d", w, i%5)
				b.Do(func(publish func(ipc.Event) ipc.Event) {
					typ := ipc.EventCardInserted
					if present[reader] {
						typ = ipc.EventCardRemoved
					}
					present[reader] = !present[reader]
					if !present[reader] {
						delete(present, reader)
					}
					publish(ipc.Event{Type: typ, Reader: reader})
				})
			}
		})
	}
	var subs []*Subscription
	for range 10 {
		s, err := b.Subscribe(0, nil, snapshot)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	wg.Wait()
	final := b.Publish(ipc.Event{Type: "test-end"}).Seq
	for i, s := range subs {
		state := map[string]bool{}
		var lastSeq uint64
		live := false
		for {
			e := recv(t, s)
			if e.Type == "test-end" {
				break
			}
			if e.Type == ipc.EventSnapshotDone {
				live, lastSeq = true, e.Seq
				continue
			}
			if live {
				if e.Seq != lastSeq+1 {
					t.Fatalf("sub %d: seq %d after %d", i, e.Seq, lastSeq)
				}
				lastSeq = e.Seq
			}
			if err := apply(state, e); err != nil {
				t.Fatalf("sub %d: %v", i, err)
			}
		}
		if lastSeq != final-1 {
			t.Fatalf("sub %d: last seq %d, want %d", i, lastSeq, final-1)
		}
		if fmt.Sprint(state) != fmt.Sprint(present) {
			t.Fatalf("sub %d: replayed state %v, want %v", i, state, present)
		}
	}
}

// apply applies a card event to a state, failing on a duplicate or a gap.
func apply(state map[string]bool, e ipc.Event) error {
	switch e.Type {
	case ipc.EventCardInserted:
		if state[e.Reader] {
			return fmt.Errorf("card in %s inserted twice (seq %d)", e.Reader, e.Seq)
		}
		state[e.Reader] = true
	case ipc.EventCardRemoved:
		if !state[e.Reader] {
			return fmt.Errorf("card in %s removed but not present (seq %d)", e.Reader, e.Seq)
		}
		delete(state, e.Reader)
	}
	return nil
}

func TestResume(t *testing.T) {
	b := New(10, 4)
	for range 10 {
		b.Publish(ipc.Event{Type: ipc.EventReaderAdded})
	}
	s, err := b.Subscribe(7, nil, func() []ipc.Event { t.Fatal("snapshot called on resume"); return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint64{8, 9, 10} {
		if e := recv(t, s); e.Seq != want {
			t.Fatalf("replayed %+v, want seq %d", e, want)
		}
	}
	if e := recv(t, s); e.Type != ipc.EventSnapshotDone || e.Seq != 10 {
		t.Fatalf("after replay %+v", e)
	}
	if _, err := b.Subscribe(6, nil, nil); err != nil {
		t.Fatalf("since 6 with 7..10 kept: %v", err)
	}
	// Both too old and not yet happened make the client start over, each
	// said as it is.
	for since, says := range map[uint64]string{5: "no longer kept", 1: "no longer kept", 11: "has not happened yet"} {
		_, err := b.Subscribe(since, nil, nil)
		var e *ipc.Error
		if !errors.As(err, &e) || e.Code != ipc.CodeEventsExpired || !strings.Contains(e.Message, says) {
			t.Errorf("Subscribe(since %d) = %v, want events_expired saying %q", since, err, says)
		}
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	b := New(2, 10)
	slow, err := b.Subscribe(0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := b.Subscribe(0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, fast)
	for range 5 {
		b.Publish(ipc.Event{Type: ipc.EventCardInserted})
		if e := recv(t, fast); e.Type != ipc.EventCardInserted {
			t.Fatalf("fast subscriber got %+v", e)
		}
	}
	var got []string
	for e := range slow.C() {
		got = append(got, fmt.Sprintf("%s/%d", e.Type, e.Seq))
	}
	want := "[snapshot-done/0 card-inserted/1 card-inserted/2 dropped/2]"
	if fmt.Sprint(got) != want {
		t.Fatalf("slow subscriber got %v, want %s", got, want)
	}
	slow.Close() // closing again after the drop is harmless
}

func TestPublishNeverBlocks(t *testing.T) {
	b := New(1, 16)
	for range 5 {
		if _, err := b.Subscribe(0, nil, nil); err != nil { // never read
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10000 {
			b.Publish(ipc.Event{Type: ipc.EventCardRemoved})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked with subscribers that never read")
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	b := New(4, 4)
	s, err := b.Subscribe(0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, s)
	b.Close()
	if _, err := s.Next(context.Background()); err == nil {
		t.Fatal("subscription still open after bus Close")
	}
	if _, err := b.Subscribe(0, nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe after Close = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b2 := New(1, 1)
	s2, _ := b2.Subscribe(0, nil, nil)
	recv(t, s2)
	if _, err := s2.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next on canceled ctx = %v", err)
	}
}

// TestCloseWithDeliversFinalEventsBeyondTheBuffer: the last events reach
// every subscriber after what was queued, through its filter, although they
// outnumber its buffer; then the subscription ends.
func TestCloseWithDeliversFinalEventsBeyondTheBuffer(t *testing.T) {
	b := New(2, 10)
	all, _ := b.Subscribe(0, nil, nil)
	alice, _ := b.Subscribe(0, func(e ipc.Event) bool { return e.User == "alice" }, nil)
	b.Publish(ipc.Event{Type: ipc.EventCardInserted})
	var final []ipc.Event
	for i := range 5 {
		final = append(final, ipc.Event{Type: ipc.EventSessionEnded, User: []string{"alice", "bob"}[i%2], Session: fmt.Sprint(i), Reason: "shutdown"})
	}
	b.CloseWith(final)
	for _, tc := range []struct {
		s    *Subscription
		want []string
	}{{all, []string{"snapshot-done", "card-inserted", "0", "1", "2", "3", "4"}}, {alice, []string{"snapshot-done", "0", "2", "4"}}} {
		var got []string
		for {
			e, err := tc.s.Next(context.Background())
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				break
			}
			if e.Type == ipc.EventSessionEnded {
				got = append(got, e.Session)
			} else {
				got = append(got, string(e.Type))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("got %v, want %v", got, tc.want)
		}
	}
	if _, err := b.Subscribe(0, nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("subscribe after CloseWith: %v", err)
	}
}
