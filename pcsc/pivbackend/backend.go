// Package pivbackend serves PIV smart cards in PC/SC readers to the daemon: it
// follows pcscd's readers and cards through a pcsc.Monitor and turns each PIV
// card into a device.Device that speaks to the card through pcsc and piv.
package pivbackend

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc"
	"github.com/hwauthd/hwauthd/pcsc/vreader"
)

// openTimeout bounds reading a newly inserted card (select, CHUID,
// certificates), so one slow card cannot hold up the events of other readers.
const openTimeout = 10 * time.Second

// idPrefix starts the id of every PIV card; the rest is its CHUID GUID.
const idPrefix = "piv-"

// Backend is the PC/SC backend. Create it with New.
type Backend struct {
	log     *slog.Logger
	monitor *pcsc.Monitor

	mu       sync.Mutex
	byReader map[string]*Device // the PIV device in each reader
	opening  map[string]bool    // readers whose card is being read
	unusable map[string]bool    // readers holding a card that is not PIV
	up       bool
	started  bool
	onChange []func() // called after a card is attached or detached
	first    device.FirstScan
}

var (
	_ device.Backend    = (*Backend)(nil)
	_ device.Enumerator = (*Backend)(nil)
)

// New returns a backend that has not started yet.
func New(log *slog.Logger) *Backend {
	return &Backend{log: log, monitor: pcsc.NewMonitor(log), byReader: map[string]*Device{}, opening: map[string]bool{}, unusable: map[string]bool{}}
}

// OnChange registers f to be called, without locks held, after a PIV card
// is attached or detached and after every other card event (the PKCS#11
// backend rescans its slots then). Call it before Run.
func (b *Backend) OnChange(f func()) { b.onChange = append(b.onChange, f) }

// ServesReader reports whether reader holds a card served as PIV, or one
// being read to find out, or is one of hwauthd's own readers (whose virtual
// cards the TPM backend serves), so that other backends can show it once.
func (b *Backend) ServesReader(reader string) bool {
	if ownReader(reader) {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.byReader[reader]
	return ok || b.opening[reader]
}

// IDPrefix is the prefix of the ids of PIV cards: "piv-".
func (b *Backend) IDPrefix() string { return idPrefix }

// Name is "pcsc".
func (b *Backend) Name() string { return "pcsc" }

// Enumerated is closed once the readers and cards pcscd had when Run began
// are known and every PIV card among them is attached, or pcscd could not
// be reached.
func (b *Backend) Enumerated() <-chan struct{} { return b.first.Enumerated() }

// Status reports whether pcscd is reachable and how many readers it has;
// during the first enumeration, which card it is reading.
func (b *Backend) Status() device.Status {
	b.mu.Lock()
	up, started := b.up, b.started
	reading := slices.Sorted(maps.Keys(b.opening))
	b.mu.Unlock()
	n := b.monitor.ReaderCount()
	switch {
	case !started:
		return device.Status{State: device.StateDown, Detail: "starting"}
	case !b.first.IsDone() && len(reading) > 0:
		return device.Status{State: device.StateDown, Detail: "reading the card in " + strings.Join(reading, ", "), Readers: &n}
	case !b.first.IsDone():
		return device.Status{State: device.StateDown, Detail: "listing pcscd's readers", Readers: &n}
	case !up:
		return device.Status{State: device.StateDown, Detail: "pcscd is not reachable; is the pcscd service running?", Readers: &n}
	}
	return device.Status{State: device.StateUp, Readers: &n}
}

// Run follows pcscd until ctx ends.
func (b *Backend) Run(ctx context.Context, host device.Host) error {
	b.mu.Lock()
	b.started = true
	b.mu.Unlock()
	events := make(chan pcsc.Event, 64)
	done := make(chan error, 1)
	go func() { done <- b.monitor.Run(ctx, events) }()
	// The first enumeration is over when the monitor has sent it and every
	// event sent until then is handled (each attach finishes in handle).
	enumerated := b.monitor.Enumerated()
	for {
		select {
		case err := <-done:
			b.first.Done()
			b.closeAll(host)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		case ev := <-events:
			b.handle(ctx, host, ev)
		case <-enumerated:
			enumerated = nil
		}
		if enumerated == nil && len(events) == 0 {
			b.first.Done()
		}
	}
}

// handle applies one monitor event, then tells the OnChange listeners.
func (b *Backend) handle(ctx context.Context, host device.Host, ev pcsc.Event) {
	b.log.Debug("PC/SC event", "event", ev.Type, "reader", ev.Reader)
	defer func() {
		for _, f := range b.onChange {
			f()
		}
	}()
	switch ev.Type {
	case pcsc.ServiceUp:
		b.setUp(true)
	case pcsc.ServiceDown:
		b.setUp(false)
	case pcsc.ReaderAdded:
		host.SetReader(device.Reader{Name: ev.Reader})
	case pcsc.ReaderRemoved:
		b.detach(host, ev.Reader)
		host.RemoveReader(ev.Reader)
	case pcsc.CardInserted:
		host.SetReader(device.Reader{Name: ev.Reader, CardPresent: true, ATR: ev.ATR})
		if ownReader(ev.Reader) {
			return // a virtual card hwauthd itself presents: the TPM backend serves it
		}
		b.attach(ctx, host, ev.Reader, ev.ATR)
	case pcsc.CardRemoved:
		b.detach(host, ev.Reader)
		host.SetReader(device.Reader{Name: ev.Reader})
	}
}

// ownReader reports whether reader is one of hwauthd's own readers, in
// which it presents virtual cards (package vreader).
func ownReader(reader string) bool { return strings.HasPrefix(reader, vreader.FriendlyName+" ") }

func (b *Backend) setUp(up bool) {
	b.mu.Lock()
	b.up = up
	b.mu.Unlock()
}

// attach opens the card in reader; a card that is not PIV is announced as
// inserted but not usable.
func (b *Backend) attach(ctx context.Context, host device.Host, reader string, atr []byte) {
	b.detach(host, reader) // a missed removal
	b.mu.Lock()
	b.opening[reader] = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.opening, reader)
		b.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	dev, err := Open(ctx, reader)
	if errors.Is(err, hwerr.ErrRemoved) {
		b.log.Debug("card gone before it could be read", "reader", reader, "err", err)
		return
	}
	if err != nil {
		b.log.Info("card is not usable as PIV", "reader", reader, "atr", hex.EncodeToString(atr), "err", err)
		b.mu.Lock()
		b.unusable[reader] = true
		b.mu.Unlock()
		host.Notify(device.Event{Type: device.EventCardInserted, Reader: reader, Reason: "not a usable PIV card: " + err.Error()})
		return
	}
	b.mu.Lock()
	for _, other := range b.byReader {
		if other.id == dev.id {
			dev.distinguish()
			break
		}
	}
	b.byReader[reader] = dev
	b.mu.Unlock()
	host.Attach(dev)
}

// detach closes and removes the device in reader, if any.
func (b *Backend) detach(host device.Host, reader string) {
	b.mu.Lock()
	dev, ok := b.byReader[reader]
	delete(b.byReader, reader)
	wasUnusable := b.unusable[reader]
	delete(b.unusable, reader)
	b.mu.Unlock()
	if wasUnusable {
		host.Notify(device.Event{Type: device.EventCardRemoved, Reader: reader})
	}
	if !ok {
		return
	}
	dev.Close()
	host.Detach(dev.Info().ID)
	b.restoreID(host, dev.id)
}

// restoreID gives a card that had to take a distinguished id (another card
// with its GUID was present) its GUID-based id back once that other card,
// gone now, held it.
func (b *Backend) restoreID(host device.Host, gone string) {
	b.mu.Lock()
	var twin *Device
	for _, d := range b.byReader {
		if d.base == gone && d.id != d.base {
			twin = d
			break
		}
	}
	var old string
	if twin != nil {
		old = twin.id
		twin.setID(gone)
	}
	b.mu.Unlock()
	if twin != nil {
		host.Detach(old)
		host.Attach(twin)
	}
}

func (b *Backend) closeAll(host device.Host) {
	b.mu.Lock()
	readers := make([]string, 0, len(b.byReader)+len(b.unusable))
	for r := range b.byReader {
		readers = append(readers, r)
	}
	for r := range b.unusable {
		readers = append(readers, r)
	}
	b.mu.Unlock()
	for _, r := range readers {
		b.detach(host, r)
	}
	b.setUp(false)
}
