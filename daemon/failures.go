package daemon

import (
	"fmt"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
)

// failureLimiter refuses sign-in attempts for a key (a user, a caller) that
// failed max times within window. It refuses before the card is touched, so
// it never spends the card's own tries.
type failureLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	fails map[string][]time.Time
}

func newFailureLimiter(max int, window time.Duration) *failureLimiter {
	return &failureLimiter{max: max, window: window, now: time.Now, fails: map[string][]time.Time{}}
}

// allow returns too_many_attempts when any key is over the limit.
func (l *failureLimiter) allow(keys ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range keys {
		recent := l.pruneLocked(k, now)
		if len(recent) >= l.max {
			wait := recent[0].Add(l.window).Sub(now).Round(time.Second)
			return &ipc.Error{
				Code:    ipc.CodeTooManyAttempts,
				Message: fmt.Sprintf("too many failed sign-ins; try again in %s", wait),
				Details: map[string]any{"retry_after_seconds": int(wait.Seconds())},
			}
		}
	}
	return nil
}

// fail records a failure for every key.
func (l *failureLimiter) fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range keys {
		l.fails[k] = append(l.pruneLocked(k, now), now)
	}
}

// reset forgets the failures of every key (a successful sign-in).
func (l *failureLimiter) reset(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.fails, k)
	}
}

// pruneLocked drops failures older than the window and returns the rest.
func (l *failureLimiter) pruneLocked(key string, now time.Time) []time.Time {
	f := l.fails[key]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= l.window {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.fails, key)
	} else {
		l.fails[key] = f
	}
	return f
}
