package fido

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	libfido2 "github.com/keys-pub/go-libfido2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Key owns one FIDO2 device: operations on it run one at a time, each with
// a context that can end a wait for a touch.
type Key struct {
	path string
	dev  *libfido2.Device
	cfg  Config
	sem  chan struct{} // one operation at a time
}

// Path returns the device path.
func (k *Key) Path() string { return k.path }

// acquire takes the key for one operation, or gives up when ctx ends.
func (k *Key) acquire(ctx context.Context) error {
	select {
	case k.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}

func (k *Key) release() { <-k.sem }

// ctxErr maps the end of a context to hwerr: a deadline is a timeout, any
// other end a cancellation.
func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", hwerr.ErrTimeout, ctx.Err())
	}
	return fmt.Errorf("%w: %w", hwerr.ErrCanceled, ctx.Err())
}

// run runs fn, a go-libfido2 call, as the key's only operation. When ctx
// ends or the touch timeout passes first, a watcher cancels the device
// request (serialized with the call's open/close by the Device mutex) and
// the result is hwerr.ErrCanceled or hwerr.ErrTimeout. touch says whether
// the operation may wait for a touch, so that TouchNotice is called.
func (k *Key) run(ctx context.Context, what string, touch bool, fn func() error) error {
	if err := k.acquire(ctx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer k.release()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, ctxErr(ctx))
	}
	opCtx, cancel := context.WithTimeout(ctx, k.cfg.TouchTimeout)
	defer cancel()
	done := make(chan struct{})
	var stopped error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		stopped = k.watch(opCtx, done, touch)
	}()
	err := fn()
	close(done)
	wg.Wait()
	if err == nil {
		return nil
	}
	if stopped != nil {
		return fmt.Errorf("%s: %w", what, stopped)
	}
	mapped := mapError(err)
	if errors.Is(mapped, errPINIncorrect) {
		mapped = &hwerr.PINIncorrect{What: "PIN", RetriesLeft: k.retriesLocked()}
	}
	return fmt.Errorf("%s: %w", what, mapped)
}

// retriesLocked reads the PIN retry counter, unknown when the key does not
// answer; the caller holds the key.
func (k *Key) retriesLocked() hwerr.Tries {
	n, err := k.dev.RetryCount()
	if err != nil {
		return hwerr.Tries{}
	}
	return hwerr.TriesLeft(n)
}

// watch waits for the operation to end (done) or for ctx to end. In the
// latter case it sends CTAPHID_CANCEL, repeating it every 50 ms in case the
// call had not opened the device yet, and returns why the call was stopped.
func (k *Key) watch(ctx context.Context, done <-chan struct{}, touch bool) error {
	var notice <-chan time.Time
	if touch && k.cfg.TouchNotice != nil {
		t := time.NewTimer(k.cfg.TouchNoticeDelay)
		defer t.Stop()
		notice = t.C
	}
	for {
		select {
		case <-done:
			return nil
		case <-notice:
			k.cfg.TouchNotice(k.path)
		case <-ctx.Done():
			why := ctxErr(ctx)
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				cancelDevice(k.dev)
				select {
				case <-done:
					return why
				case <-tick.C:
				}
			}
		}
	}
}
