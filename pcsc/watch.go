package pcsc

import (
	"context"
	"errors"
	"slices"

	"github.com/ebfe/scard"
)

// watch is one Monitor session's view of pcscd: the reader states passed to
// SCardGetStatusChange, the last one being the PnP pseudo reader.
type watch struct {
	m      *Monitor
	sctx   *scard.Context
	events chan<- Event
	states []scard.ReaderState
}

// counterShift is where pcsc-lite keeps a reader's card event counter in
// dwEventState: the high 16 bits, incremented on every insertion and
// removal, so a removal and reinsertion between two waits still shows.
const counterShift = 16

// start reads the current state of every reader without waiting, then
// reports ServiceUp and the snapshot.
func (w *watch) start(ctx context.Context) error {
	names, err := w.listReaders()
	if err != nil {
		return err
	}
	w.states = make([]scard.ReaderState, 0, len(names)+1)
	for _, n := range names {
		w.states = append(w.states, scard.ReaderState{Reader: n, CurrentState: scard.StateUnaware})
	}
	w.states = append(w.states, scard.ReaderState{Reader: pnpReader, CurrentState: scard.StateUnaware})
	if err := w.sctx.GetStatusChange(w.states, 0); err != nil && !errors.Is(err, scard.ErrTimeout) {
		return wrapErr("read reader states", err)
	}
	if err := w.m.markUp(ctx, w.events); err != nil {
		return err
	}
	for _, st := range w.states[:len(w.states)-1] {
		if err := w.m.addReader(ctx, w.events, snapshot(st)); err != nil {
			return err
		}
	}
	return nil
}

// loop waits, without a timeout, for the next change and reports it, until
// ctx ends (nil) or the wait fails.
func (w *watch) loop(ctx context.Context) error {
	unknown := 0
	for {
		w.acknowledge()
		err := w.sctx.GetStatusChange(w.states, -1)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err == nil:
			unknown = 0
			err = w.apply(ctx)
		case errors.Is(err, scard.ErrTimeout):
			continue
		case errors.Is(err, scard.ErrUnknownReader):
			// A reader went away between listing and waiting.
			if unknown++; unknown >= unknownReaderStorm {
				return wrapErr("wait for status change", err)
			}
			err = w.relist(ctx)
		default:
			return wrapErr("wait for status change", err)
		}
		if err != nil {
			return err
		}
	}
}

// acknowledge makes the last seen state the current one, so that the next
// wait returns only on a change after it.
func (w *watch) acknowledge() {
	for i := range w.states {
		w.states[i].CurrentState = w.states[i].EventState &^ scard.StateChanged
	}
}

// apply reports the changes the last wait returned.
func (w *watch) apply(ctx context.Context) error {
	n := len(w.states) - 1
	for i := range w.states[:n] {
		if err := w.readerChanged(ctx, &w.states[i]); err != nil {
			return err
		}
	}
	if w.states[n].EventState&scard.StateChanged != 0 {
		return w.relist(ctx)
	}
	return nil
}

// readerChanged compares a reader's new state with what the monitor last
// reported and reports the difference. The event counter reveals a card that
// was removed and inserted again between two waits.
func (w *watch) readerChanged(ctx context.Context, st *scard.ReaderState) error {
	if st.EventState&scard.StateChanged == 0 || st.EventState&(scard.StateUnknown|scard.StateUnavailable) != 0 {
		return nil // unchanged, or gone: the PnP change handles it
	}
	now := snapshot(*st)
	prev := w.m.reader(st.Reader)
	recycled := uint32(st.CurrentState)>>counterShift != uint32(st.EventState)>>counterShift
	switch {
	case prev.CardPresent && now.CardPresent && recycled:
		if err := w.m.cardRemoved(ctx, w.events, st.Reader); err != nil {
			return err
		}
		return w.m.cardInserted(ctx, w.events, st.Reader, now.ATR)
	case !prev.CardPresent && now.CardPresent:
		return w.m.cardInserted(ctx, w.events, st.Reader, now.ATR)
	case prev.CardPresent && !now.CardPresent:
		return w.m.cardRemoved(ctx, w.events, st.Reader)
	}
	return nil
}

// relist lists the readers again after a PnP change: removed readers are
// reported with ReaderRemoved, new ones with ReaderAdded and their card.
func (w *watch) relist(ctx context.Context) error {
	names, err := w.listReaders()
	if err != nil {
		return err
	}
	pnp := w.states[len(w.states)-1]
	var kept, added []scard.ReaderState
	for _, st := range w.states[:len(w.states)-1] {
		if slices.Contains(names, st.Reader) {
			kept = append(kept, st)
		} else if err := w.m.removeReader(ctx, w.events, st.Reader); err != nil {
			return err
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(kept, func(s scard.ReaderState) bool { return s.Reader == n }) {
			added = append(added, scard.ReaderState{Reader: n, CurrentState: scard.StateUnaware})
		}
	}
	if len(added) > 0 {
		if err := w.sctx.GetStatusChange(added, 0); err != nil && !errors.Is(err, scard.ErrTimeout) {
			return wrapErr("read new reader states", err)
		}
		for _, st := range added {
			if err := w.m.addReader(ctx, w.events, snapshot(st)); err != nil {
				return err
			}
		}
	}
	w.states = append(append(kept, added...), pnp)
	return nil
}

// listReaders lists the readers; none is an empty list, not an error.
func (w *watch) listReaders() ([]string, error) {
	names, err := w.sctx.ListReaders()
	if errors.Is(err, scard.ErrNoReadersAvailable) {
		return nil, nil
	}
	if err != nil {
		return nil, wrapErr("list readers", err)
	}
	return names, nil
}

// snapshot turns a reader state into what the monitor reports. A mute card
// (present, no ATR) counts as no card: nothing can talk to it.
func snapshot(st scard.ReaderState) ReaderState {
	present := st.EventState&scard.StatePresent != 0 && st.EventState&scard.StateMute == 0
	rs := ReaderState{Name: st.Reader, CardPresent: present}
	if present {
		rs.ATR = st.Atr
	}
	return rs
}

// reader returns what the monitor last reported for name.
func (m *Monitor) reader(name string) ReaderState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readers[name]
}
