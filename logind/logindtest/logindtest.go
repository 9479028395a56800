// Package logindtest stands in for systemd-logind in tests of the
// smart card removal policy, which asks logind to lock or end a login
// session.
package logindtest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/hwauthd/hwauthd/logind"
)

// Recorder records what it is asked and answers as logind does (the login
// session's id), or with Err when it is set. It is safe for concurrent use.
type Recorder struct {
	Err error

	mu    sync.Mutex
	calls []string
}

// Lock records "lock SESSION UID".
func (r *Recorder) Lock(_ context.Context, t logind.Target) (string, error) {
	return r.call("lock", t)
}

// Terminate records "terminate SESSION UID".
func (r *Recorder) Terminate(_ context.Context, t logind.Target) (string, error) {
	return r.call("terminate", t)
}

func (r *Recorder) call(action string, t logind.Target) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("%s %s %d", action, t.ID, t.UID))
	if r.Err != nil {
		return "", r.Err
	}
	return t.ID, nil
}

// Calls returns the calls so far, each "ACTION SESSION UID" (the session is
// empty when the target is named by a process).
func (r *Recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}
