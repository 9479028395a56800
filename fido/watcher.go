package fido

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// EventKind says whether a key arrived or left.
type EventKind int

// Event kinds.
const (
	// Attached means a key appeared in the device list.
	Attached EventKind = iota + 1
	// Detached means a key left the device list.
	Detached
)

func (k EventKind) String() string {
	switch k {
	case Attached:
		return "key-attached"
	case Detached:
		return "key-detached"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a hot-plug event.
type Event struct {
	Kind   EventKind
	Device DeviceInfo
}

// Lister lists the keys present; Backend.List is one.
type Lister func(ctx context.Context) ([]DeviceInfo, error)

// Watcher turns hidraw nodes appearing in and leaving a directory (/dev)
// into Attached and Detached events by re-listing keys on each change. It
// waits on inotify; there is no polling loop.
type Watcher struct {
	dir  string
	list Lister

	enumerated     chan struct{}
	enumeratedOnce sync.Once
}

// NewWatcher watches dir (normally "/dev") and lists keys with list.
func NewWatcher(dir string, list Lister) *Watcher {
	return &Watcher{dir: dir, list: list, enumerated: make(chan struct{})}
}

// Enumerated returns a channel closed once Run has sent the Attached events
// of the keys present when it began, or has failed before. A receiver that
// has taken every event sent before it closed has seen the first listing.
func (w *Watcher) Enumerated() <-chan struct{} { return w.enumerated }

// Run sends an Attached event for every key present, then an event for
// each change, until ctx ends. events is not closed. It returns ctx's error
// or the error that stopped the watch.
func (w *Watcher) Run(ctx context.Context, events chan<- Event) error {
	defer w.enumeratedOnce.Do(func() { close(w.enumerated) })
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("watch %s: inotify: %w", w.dir, err)
	}
	defer unix.Close(fd)
	mask := uint32(unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_ATTRIB)
	if _, err := unix.InotifyAddWatch(fd, w.dir, mask); err != nil {
		return fmt.Errorf("watch %s: %w", w.dir, err)
	}
	wake, err := newWaker(ctx)
	if err != nil {
		return err
	}
	defer wake.close()
	known := map[string]DeviceInfo{}
	if err := w.rescan(ctx, known, events); err != nil {
		return err
	}
	w.enumeratedOnce.Do(func() { close(w.enumerated) })
	for {
		changed, err := waitHidraw(fd, wake.r)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if changed {
			if err := w.rescan(ctx, known, events); err != nil {
				return err
			}
		}
	}
}

// rescan lists the keys and sends the differences from known.
func (w *Watcher) rescan(ctx context.Context, known map[string]DeviceInfo, events chan<- Event) error {
	devs, err := w.list(ctx)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	now := map[string]DeviceInfo{}
	for _, d := range devs {
		now[d.Path] = d
	}
	var out []Event
	for p, d := range known {
		if _, ok := now[p]; !ok {
			out = append(out, Event{Kind: Detached, Device: d})
			delete(known, p)
		}
	}
	for p, d := range now {
		if _, ok := known[p]; !ok {
			out = append(out, Event{Kind: Attached, Device: d})
			known[p] = d
		}
	}
	for _, e := range out {
		select {
		case events <- e:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// waitHidraw blocks until inotify reports events or wake becomes readable,
// and says whether a hidraw* name changed.
func waitHidraw(fd, wake int) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(wake), Events: unix.POLLIN}}
	if _, err := unix.Poll(fds, -1); err != nil {
		if errors.Is(err, unix.EINTR) {
			return false, nil
		}
		return false, fmt.Errorf("watch: poll: %w", err)
	}
	if fds[1].Revents != 0 {
		return false, nil
	}
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	n, err := unix.Read(fd, buf)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return false, nil
		}
		return false, fmt.Errorf("watch: read inotify: %w", err)
	}
	return hasHidraw(buf[:n]), nil
}

// hasHidraw parses inotify events and reports a name starting with
// "hidraw" (or a queue overflow, after which everything is re-listed).
func hasHidraw(b []byte) bool {
	for len(b) >= unix.SizeofInotifyEvent {
		// struct inotify_event: wd, mask, cookie, len (native endian).
		mask := binary.NativeEndian.Uint32(b[4:8])
		end := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(b[12:16]))
		if end > len(b) || end < unix.SizeofInotifyEvent {
			return false
		}
		if mask&unix.IN_Q_OVERFLOW != 0 {
			return true
		}
		name := strings.TrimRight(string(b[unix.SizeofInotifyEvent:end]), "\x00")
		if strings.HasPrefix(name, "hidraw") {
			return true
		}
		b = b[end:]
	}
	return false
}

// waker is a pipe that becomes readable when a context ends.
type waker struct {
	r, w   int
	stop   func() bool
	mu     sync.Mutex
	closed bool
}

func newWaker(ctx context.Context) (*waker, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, fmt.Errorf("watch: pipe: %w", err)
	}
	w := &waker{r: p[0], w: p[1]}
	w.stop = context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.closed {
			unix.Write(w.w, []byte{1})
		}
	})
	return w, nil
}

func (w *waker) close() {
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	unix.Close(w.r)
	unix.Close(w.w)
}
