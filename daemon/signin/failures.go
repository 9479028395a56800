package signin

import (
	"errors"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Secrets a failure limit counts separately.
const (
	SecretPIN = "PIN"
	SecretPUK = "PUK"
)

// Key is what failures are counted for: one authenticator, one
// target user (the user signed in or registered, or the user acting on their
// card), one secret. Never the caller alone: root signing in many users
// through PAM must not lock them all out with one user's failures.
type Key struct {
	Authenticator, User, Secret string
}

// Limiter refuses attempts for a key that failed max times within
// window, before anything reaches the device. It never answers before the
// device's own counter would: while the device reports how many tries it has
// left (or that it is blocked, which it answers itself at no cost), attempts
// go through to it, so an owner's wrong PINs end in the card's own
// pin_blocked and the PUK path stays open. It so stops what no device counter
// stops: failures after which the device did not say how many tries remain,
// and failures that spend no try (a certificate or identity that does not
// match, an authenticator not registered to the user). A success resets the
// key.
type Limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	fails map[Key]*failureRecord
}

// failureRecord is the recent failures of one key.
type failureRecord struct {
	times []time.Time
	// deviceCounts is set when the last failure came from a device that
	// reported its remaining tries or that it is blocked.
	deviceCounts bool
}

// sweepAt is the number of keys at which record drops every expired one:
// keys are pruned when touched, and a key nobody touches again would stay.
const sweepAt = 4096

// NewLimiter returns a limiter that refuses a key after max failures within
// window.
func NewLimiter(max int, window time.Duration) *Limiter {
	return &Limiter{max: max, window: window, now: time.Now, fails: map[Key]*failureRecord{}}
}

// Allow returns a *TooManyAttemptsError when k is over the limit and no
// device counter answers first.
func (l *Limiter) Allow(k Key) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	rec := l.pruneLocked(k, now)
	if rec == nil || len(rec.times) < l.max || rec.deviceCounts {
		return nil
	}
	wait := max(rec.times[0].Add(l.window).Sub(now).Round(time.Second), time.Second)
	return &TooManyAttemptsError{Key: k, RetryAfter: wait}
}

// Record notes the outcome of an attempt that reached the device (or was
// refused for the authenticator it chose): a success resets k, a failure
// that counts is added.
func (l *Limiter) Record(k Key, err error) {
	if err == nil {
		l.mu.Lock()
		delete(l.fails, k)
		l.mu.Unlock()
		return
	}
	counts, device := classifyFailure(err)
	if !counts {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.fails) >= sweepAt {
		for old := range l.fails {
			l.pruneLocked(old, now)
		}
	}
	rec := l.pruneLocked(k, now)
	if rec == nil {
		rec = &failureRecord{}
		l.fails[k] = rec
	}
	rec.times = append(rec.times, now)
	rec.deviceCounts = device
}

// Do runs attempt, which presents a secret to a device, unless k is over
// the failure limit, and records its outcome.
func (l *Limiter) Do(k Key, attempt func() error) error {
	if err := l.Allow(k); err != nil {
		return err
	}
	err := attempt()
	l.Record(k, err)
	return err
}

// pruneLocked drops failures older than the window and returns what is left
// of k's record (nil when nothing).
func (l *Limiter) pruneLocked(k Key, now time.Time) *failureRecord {
	rec := l.fails[k]
	if rec == nil {
		return nil
	}
	i := 0
	for i < len(rec.times) && now.Sub(rec.times[i]) >= l.window {
		i++
	}
	rec.times = rec.times[i:]
	if len(rec.times) == 0 {
		delete(l.fails, k)
		return nil
	}
	return rec
}

// classifyFailure says whether err counts against the limit (what a
// guessing attacker causes, not a missing card or a daemon fault) and
// whether the device's own counter spoke: a wrong PIN or PUK with the tries
// left, or a blocked one (hwerr.ErrPINBlocked, which *PINBlockedError
// wraps). It knows only typed errors: the hardware classes of package hwerr
// and this package's own.
func classifyFailure(err error) (counts, deviceCounts bool) {
	var wrong *hwerr.PINIncorrect
	if errors.As(err, &wrong) {
		return true, wrong.RetriesLeft.Known()
	}
	if errors.Is(err, hwerr.ErrPINBlocked) {
		return true, true
	}
	if _, ok := errors.AsType[*MismatchError](err); ok {
		return true, false
	}
	if _, ok := errors.AsType[*CertificateError](err); ok {
		return true, false
	}
	if _, ok := errors.AsType[*NotRegisteredError](err); ok {
		return true, false
	}
	return false, false
}
