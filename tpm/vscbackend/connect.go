package vscbackend

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/tpm"
)

// Timing of the TPM connection.
const (
	// retryMin and retryMax bound the backoff between connection attempts.
	retryMin = 100 * time.Millisecond
	retryMax = 30 * time.Second
	// healthInterval is how often a connected, idle TPM is checked, so that
	// status notices a TPM that went away while nobody used it.
	healthInterval = 5 * time.Second
	// staleAfter: a TPM not heard from for this long is checked before an
	// operation uses it, so that a restarted TPM's dead connection is
	// replaced before a PIN goes out, not after.
	staleAfter = time.Second
	// reconnectWait bounds how long an operation waits for a TPM that is
	// down to come back before it answers backend_unavailable.
	reconnectWait = 2 * time.Second
)

// Run connects to the TPM, presents the stored cards and serves until ctx
// ends. When the TPM goes away (a device reset, swtpm restarted) status
// says down and why, and Run reconnects with backoff; the cards stay
// presented and their operations answer backend_unavailable meanwhile.
// A TPM that is not there is reported in Status; the rest of the daemon
// keeps working.
func (b *Backend) Run(ctx context.Context, host device.Host) error {
	b.mu.Lock()
	b.host = host
	b.mu.Unlock()
	delay := retryMin
	for {
		err := b.connect(ctx)
		b.first.Done()
		if err != nil {
			b.down(err)
		} else {
			delay = retryMin
			b.watch(ctx)
		}
		if ctx.Err() != nil {
			b.shutdown(host)
			return nil
		}
		select {
		case <-ctx.Done():
			b.shutdown(host)
			return nil
		case <-b.kick:
		case <-time.After(delay):
			delay = min(2*delay, retryMax)
		}
	}
}

// connect opens the TPM and makes it the backend's: the first time (or
// when another TPM answers) it loads the cards; after a reconnection to
// the same TPM it refreshes their counters.
func (b *Backend) connect(ctx context.Context) error {
	select { // a loss reported before this connection is not this one's
	case <-b.lost:
	default:
	}
	t, err := tpm.Open(ctx, b.cfg)
	if err != nil {
		return err
	}
	info, err := t.Info(ctx)
	if err != nil {
		t.Close()
		return err
	}
	b.mu.Lock()
	reload := !b.loaded || b.info.DeviceID != info.DeviceID
	stale := slices.Collect(maps.Values(b.cards))
	if reload {
		b.cards = map[string]*Device{}
	}
	host := b.host
	b.mu.Unlock()
	if reload {
		for _, d := range stale {
			host.Detach(d.id())
		}
		if err := b.loadCards(ctx, t); err != nil {
			t.Close()
			return err
		}
	} else {
		for _, d := range stale {
			d.refreshTries(ctx, t)
		}
	}
	b.mu.Lock()
	old := b.tpm
	b.tpm, b.info, b.lastOK, b.loaded = t, info, time.Now(), true
	select {
	case <-b.up:
	default:
		close(b.up)
	}
	b.mu.Unlock()
	if old != nil {
		old.Close()
	}
	b.refreshStatus(ctx)
	b.mu.Lock()
	ts := b.status.TPM
	b.mu.Unlock()
	attrs := []any{"manufacturer", strings.TrimSpace(info.Manufacturer), "device", info.DeviceID}
	if ts != nil {
		attrs = append(attrs, "lockout_max_tries", ts.Lockout.MaxTries, "lockout_failures", ts.Lockout.Failures,
			"lockout_interval_s", ts.Lockout.IntervalSeconds, "in_lockout", ts.Lockout.InLockout,
			"cards", ts.Cards, "max_cards", ts.MaxCards, "cards_left_estimate", ts.CardsLeft)
	}
	b.log.Info("TPM connected", attrs...)
	return nil
}

// watch checks an idle TPM every healthInterval and returns when it stops
// answering (or an operation found it gone) or ctx ends.
func (b *Backend) watch(ctx context.Context) {
	tick := time.NewTicker(healthInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.lost:
			return
		case <-tick.C:
			b.mu.Lock()
			t, idle := b.tpm, time.Since(b.lastOK) >= healthInterval
			b.mu.Unlock()
			if t == nil {
				return
			}
			if !idle {
				continue
			}
			if err := t.Ping(ctx); err != nil && ctx.Err() == nil {
				b.lose(t, err)
				return
			}
			b.touch()
		}
	}
}

// down records why the TPM cannot be used: absent when there is no such
// device, down otherwise.
func (b *Backend) down(err error) {
	state := device.StateDown
	if b.cfg.Simulator == "" {
		dev := b.cfg.Device
		if dev == "" {
			dev = tpm.DefaultDevice
		}
		if _, serr := os.Stat(dev); errors.Is(serr, os.ErrNotExist) {
			state = device.StateAbsent
		}
	}
	b.mu.Lock()
	changed := b.status.State != state || !strings.Contains(b.status.Detail, err.Error())
	b.status = device.Status{State: state, Detail: "TPM not reachable (retrying): " + err.Error()}
	b.mu.Unlock()
	if changed {
		b.log.Warn("TPM not reachable; virtual smart cards answer backend_unavailable until it is", "err", err)
	}
}

// lose drops t, which stopped answering, unless it was replaced already,
// and has Run reconnect.
func (b *Backend) lose(t *tpm.TPM, err error) {
	b.mu.Lock()
	if b.tpm != t {
		b.mu.Unlock()
		return
	}
	b.tpm = nil
	b.up = make(chan struct{})
	b.status = device.Status{State: device.StateDown, Detail: "TPM stopped answering (reconnecting): " + err.Error()}
	b.mu.Unlock()
	b.log.Warn("TPM stopped answering; reconnecting", "err", err)
	t.Close()
	select {
	case b.lost <- struct{}{}:
	default:
	}
}

// touch records that the TPM answered.
func (b *Backend) touch() {
	b.mu.Lock()
	b.lastOK = time.Now()
	b.mu.Unlock()
}

// shutdown closes the TPM and withdraws the cards.
func (b *Backend) shutdown(host device.Host) {
	b.mu.Lock()
	t := b.tpm
	devs := slices.Collect(maps.Values(b.cards))
	b.tpm, b.cards = nil, map[string]*Device{}
	b.mu.Unlock()
	if t != nil {
		t.Close()
	}
	for _, d := range devs {
		host.Detach(d.id())
	}
}

// engine returns the connected TPM for an operation. A TPM idle for
// staleAfter is checked first; one that is down (or fails the check) is
// reconnected, the operation waiting up to reconnectWait, so that the
// first call after a TPM comes back works. Otherwise backend_unavailable.
func (b *Backend) engine(ctx context.Context) (*tpm.TPM, error) {
	for range 2 {
		b.mu.Lock()
		t, up, stale := b.tpm, b.up, time.Since(b.lastOK) >= staleAfter
		b.mu.Unlock()
		if t != nil && !stale {
			return t, nil
		}
		if t != nil {
			err := t.Ping(ctx)
			if err == nil {
				b.touch()
				return t, nil
			}
			if ctx.Err() != nil {
				return nil, err
			}
			b.lose(t, err)
			b.mu.Lock()
			up = b.up
			b.mu.Unlock()
		}
		select {
		case b.kick <- struct{}{}:
		default:
		}
		select {
		case <-up:
		case <-time.After(reconnectWait):
			return nil, b.unavailable()
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the TPM: %w: %v", hwerr.ErrCanceled, ctx.Err())
		}
	}
	return nil, b.unavailable()
}

func (b *Backend) unavailable() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Errorf("TPM: %s: %w", b.status.Detail, hwerr.ErrUnavailable)
}

// done notes an operation's outcome: the TPM answered, or it is gone.
func (b *Backend) done(t *tpm.TPM, err error) {
	if errors.Is(err, hwerr.ErrUnavailable) {
		b.lose(t, err)
		return
	}
	b.touch()
}

// refreshStatus reports the TPM up, with its lockout state and room for
// cards, and caps the card limit at what the TPM can hold.
func (b *Backend) refreshStatus(ctx context.Context) {
	b.mu.Lock()
	t, info, n, full := b.tpm, b.info, len(b.cards), b.full
	b.mu.Unlock()
	st := device.Status{State: device.StateUp, Manufacturer: strings.TrimSpace(info.Manufacturer), Devices: &n}
	if t != nil {
		if s, err := t.State(ctx); err == nil {
			if full {
				s.Capacity.CardsLeft = 0
			}
			st.TPM = tpmStatus(s, n, t.Policy().MaxCards)
			b.warnCapacity(t.Policy().MaxCards, st.TPM)
		} else {
			b.log.Warn("read the TPM's lockout state and capacity", "err", err)
		}
	}
	b.mu.Lock()
	if b.tpm == t {
		b.status = st
	}
	b.mu.Unlock()
}

func tpmStatus(s tpm.State, cards, maxCards int) *device.TPMStatus {
	return &device.TPMStatus{
		Lockout: device.TPMLockout{
			MaxTries:        s.Lockout.MaxAuthFail,
			Failures:        s.Lockout.Counter,
			IntervalSeconds: uint32(s.Lockout.Interval / time.Second),
			RecoverySeconds: uint32(s.Lockout.Recovery / time.Second),
			InLockout:       s.Lockout.InLockout,
		},
		Cards:           cards,
		MaxCards:        min(maxCards, cards+s.Capacity.CardsLeft),
		CardsLeft:       s.Capacity.CardsLeft,
		PersistentAvail: s.Capacity.PersistentAvail,
	}
}

// warnCapacity logs, for IT, when max_cards promises more than the TPM
// holds.
func (b *Backend) warnCapacity(configured int, s *device.TPMStatus) {
	if configured > s.MaxCards {
		b.log.Warn("tpm.max_cards is more than this TPM has room for; creating beyond that fails with tpm_full",
			"max_cards", configured, "cards", s.Cards, "cards_left_estimate", s.CardsLeft)
	}
}
