package daemon

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/hwauthd/hwauthd/daemon/events"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
)

// Manager keeps the present readers and authenticators that the backends
// report, and publishes their changes on the event bus. It implements
// device.Host.
//
// Lock order: Manager.mu, then the bus's own lock. State changes and their
// events happen under mu, and subscriptions take their snapshot under mu too,
// so a watcher sees every change exactly once: in its snapshot or as an event.
type Manager struct {
	log *slog.Logger
	bus *events.Bus
	// onDetach, when set, is called after a device is detached, without mu.
	onDetach func(id string)
	// identify, when set, runs before a secret is sent to a device and
	// refuses one that is not the authenticator it claims to be.
	identify func(ctx context.Context, info device.Info) error

	mu      sync.Mutex
	devices map[string]device.Device
	readers map[string]ipc.Reader
}

var _ device.Host = (*Manager)(nil)

// NewManager returns an empty manager publishing on bus.
func NewManager(log *slog.Logger, bus *events.Bus) *Manager {
	return &Manager{
		log:     log,
		bus:     bus,
		devices: map[string]device.Device{},
		readers: map[string]ipc.Reader{},
	}
}

// Attach adds a present device and announces it. The manager keeps it
// guarded (guardedDevice), so that a device that stops answering cannot hold
// a request past its deadline nor the manager's lock.
func (m *Manager) Attach(d device.Device) {
	info := d.Info()
	g := guard(d, m.log, m.checkIdentity)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.devices[info.ID] = g
	m.log.Info("authenticator present", "id", info.ID, "kind", info.Kind, "reader", info.Reader)
	m.bus.Publish(attachEvent(info, true))
	if info.CardAuth == device.CardAuthFailed {
		m.log.Warn("card failed its card-authentication challenge; it gets no PIN", "id", info.ID, "reader", info.Reader)
		m.bus.Publish(ipc.Event{Type: ipc.EventAuthenticatorMismatch, Authenticator: info.ID, Reader: info.Reader, Reason: reasonCardAuthFailed})
	}
}

// checkIdentity runs the daemon's identity check, if any.
func (m *Manager) checkIdentity(ctx context.Context, info device.Info) error {
	if m.identify == nil {
		return nil
	}
	return m.identify(ctx, info)
}

// Detach removes a device that is gone and announces it.
func (m *Manager) Detach(id string) {
	m.mu.Lock()
	d, ok := m.devices[id]
	if ok {
		delete(m.devices, id)
		info := d.Info()
		m.log.Info("authenticator gone", "id", id, "reader", info.Reader)
		m.bus.Publish(attachEvent(info, false))
	}
	m.mu.Unlock()
	if ok && m.onDetach != nil {
		m.onDetach(id)
	}
}

// SetReader records a reader; a new one is announced.
func (m *Manager) SetReader(r device.Reader) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, known := m.readers[r.Name]
	m.readers[r.Name] = readerToAPI(r)
	if !known {
		m.bus.Publish(ipc.Event{Type: ipc.EventReaderAdded, Reader: r.Name})
	}
}

// RemoveReader forgets a reader and announces it.
func (m *Manager) RemoveReader(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.readers[name]; !ok {
		return
	}
	delete(m.readers, name)
	m.bus.Publish(ipc.Event{Type: ipc.EventReaderRemoved, Reader: name})
}

// Notify publishes a backend's event.
func (m *Manager) Notify(e device.Event) { m.Publish(eventToAPI(e)) }

// Publish emits an event that changes no state the manager keeps.
func (m *Manager) Publish(e ipc.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bus.Publish(e)
}

// Device returns the present device with the given id.
func (m *Manager) Device(id string) (device.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[id]
	if !ok {
		return nil, fmt.Errorf("authenticator %q is not present: %w", id, hwerr.ErrNotFound)
	}
	return d, nil
}

// FirstOfKind returns a present device of the kind (the first by id).
func (m *Manager) FirstOfKind(kind device.Kind) (device.Device, error) {
	for _, a := range m.Authenticators() {
		if a.Kind == kind {
			return m.Device(a.ID)
		}
	}
	return nil, fmt.Errorf("no %s present: %w", kind, hwerr.ErrNotFound)
}

// Authenticators describes every present device, ordered by id.
func (m *Manager) Authenticators() []device.Info {
	m.mu.Lock()
	devs := slices.Collect(maps.Values(m.devices))
	m.mu.Unlock()
	out := make([]device.Info, 0, len(devs))
	for _, d := range devs {
		out = append(out, d.Info())
	}
	slices.SortFunc(out, func(a, b device.Info) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Readers lists the known readers, ordered by name.
func (m *Manager) Readers() []ipc.Reader {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Collect(maps.Values(m.readers))
	slices.SortFunc(out, func(a, b ipc.Reader) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Subscribe registers a watcher. With since == 0 it first receives the
// present readers and authenticators as reader-added and card-inserted or
// key-attached events; with since > 0 it receives the events after since.
func (m *Manager) Subscribe(since uint64, filter func(ipc.Event) bool) (*events.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bus.Subscribe(since, filter, m.snapshotLocked)
}

func (m *Manager) snapshotLocked() []ipc.Event {
	var out []ipc.Event
	for _, name := range slices.Sorted(maps.Keys(m.readers)) {
		out = append(out, ipc.Event{Type: ipc.EventReaderAdded, Reader: name})
	}
	for _, id := range slices.Sorted(maps.Keys(m.devices)) {
		out = append(out, attachEvent(m.devices[id].Info(), true))
	}
	return out
}

// attachEvent is the event announcing that a device came or went.
func attachEvent(a device.Info, present bool) ipc.Event {
	t := ipc.EventCardInserted
	switch {
	case a.Kind == device.KindSecurityKey && present:
		t = ipc.EventKeyAttached
	case a.Kind == device.KindSecurityKey:
		t = ipc.EventKeyDetached
	case !present:
		t = ipc.EventCardRemoved
	}
	return ipc.Event{Type: t, Reader: a.Reader, Authenticator: a.ID}
}
