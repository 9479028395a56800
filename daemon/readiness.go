package daemon

import (
	"context"
	"strings"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/ipc"
)

// DefaultReadyTimeout bounds how long the daemon waits for its backends'
// first enumeration before it serves (and reports READY=1) anyway; /v1/status
// then shows the backends still starting and what they are doing.
const DefaultReadyTimeout = 5 * time.Second

// awaitEnumeration waits until every backend that can tell has enumerated
// its devices once, for at most the ready timeout or until ctx ends, and
// returns the names of the backends still starting.
func (d *Daemon) awaitEnumeration(ctx context.Context) []string {
	timer := time.NewTimer(d.readyTimeout)
	defer timer.Stop()
	for _, b := range d.backends {
		e, ok := b.(device.Enumerator)
		if !ok {
			continue
		}
		select {
		case <-e.Enumerated():
		case <-timer.C:
			return d.starting()
		case <-ctx.Done():
			return d.starting()
		}
	}
	return nil
}

// awaitAll waits, without a bound, until every backend has enumerated once;
// it reports false when ctx ended first.
func (d *Daemon) awaitAll(ctx context.Context) bool {
	for _, b := range d.backends {
		if e, ok := b.(device.Enumerator); ok {
			select {
			case <-e.Enumerated():
			case <-ctx.Done():
				return false
			}
		}
	}
	return true
}

// stillStarting names the backends still in their first enumeration, each
// with what it says it is doing: "pcsc (reading the card in Reader 0)".
func (d *Daemon) stillStarting() string {
	var parts []string
	for _, b := range d.backends {
		if !enumerated(b) {
			detail := strings.TrimPrefix(strings.TrimPrefix(backendStatus(b).Detail, "starting"), ": ")
			if detail == "" {
				parts = append(parts, b.Name())
			} else {
				parts = append(parts, b.Name()+" ("+detail+")")
			}
		}
	}
	return strings.Join(parts, ", ")
}

// starting lists the backends that have not finished their first
// enumeration.
func (d *Daemon) starting() []string {
	var names []string
	for _, b := range d.backends {
		if !enumerated(b) {
			names = append(names, b.Name())
		}
	}
	return names
}

// enumerated reports whether b has finished its first enumeration; a
// backend that cannot tell counts as done.
func enumerated(b device.Backend) bool {
	e, ok := b.(device.Enumerator)
	if !ok {
		return true
	}
	select {
	case <-e.Enumerated():
		return true
	default:
		return false
	}
}

// backendStatus is b's status, shown as down and starting, with what the
// backend says it is doing, until its first enumeration is over.
func backendStatus(b device.Backend) ipc.BackendStatus {
	st := statusToAPI(b.Status())
	if enumerated(b) {
		return st
	}
	detail := "starting"
	if st.Detail != "" && !strings.HasPrefix(st.Detail, "starting") {
		detail += ": " + st.Detail
	}
	return ipc.BackendStatus{State: ipc.BackendDown, Detail: detail, Readers: st.Readers}
}
