package client

import (
	"bytes"
	"maps"

	"github.com/hwauthd/hwauthd/ipc"
)

// The daemon answers a status request with the same bytes until its status
// changes (and at least once a second, with its uptime). Decoding them was
// most of the client's own work per status request, so the client keeps the
// last answer with what it decoded to, and for the same bytes returns a
// copy of that instead of decoding again. The same bytes decode to the same
// value; each caller gets a copy of its own (cloneStatus), which it may
// change.

// statusAnswer is a status answer and what it decoded to; never changed
// once stored.
type statusAnswer struct {
	body   []byte
	status ipc.Status
}

// decodeStatus decodes a status answer, or copies the decoded last one
// when b is the same answer.
func (c *Client) decodeStatus(b []byte) (*ipc.Status, error) {
	if last := c.lastStatus.Load(); last != nil && bytes.Equal(last.body, b) {
		st := cloneStatus(last.status)
		return &st, nil
	}
	var st ipc.Status
	if err := decodeAnswer("GET", "/v1/status", b, &st); err != nil {
		return &st, err
	}
	c.lastStatus.Store(&statusAnswer{body: bytes.Clone(b), status: cloneStatus(st)})
	return &st, nil
}

// cloneStatus returns a copy of s that shares no memory with it.
// TestCloneStatusSharesNothing fills every field (new ones included) and
// fails if the copy differs or shares a pointer, map or slice.
func cloneStatus(s ipc.Status) ipc.Status {
	c := s
	c.Backends = maps.Clone(s.Backends)
	for name, b := range c.Backends {
		if b.Readers != nil || b.Devices != nil || b.TPM != nil {
			b.Readers = clonePtr(b.Readers)
			b.Devices = clonePtr(b.Devices)
			b.TPM = clonePtr(b.TPM)
			c.Backends[name] = b
		}
	}
	return c
}

// clonePtr returns a pointer to a copy of *p, or nil.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
