package pkcs11

import (
	"context"
	"reflect"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/pkcs11/wire"
)

// scan lists the tokens, attaches new or changed ones and detaches those
// gone. A token that two modules reach is kept through the first; a token in
// a reader that the native PIV path serves is skipped unless IncludePIV.
func (b *Backend) scan(ctx context.Context, host device.Host, c *helperConn) {
	resp, err := c.call(ctx, &wire.Request{Op: wire.OpList})
	if err != nil {
		b.log.Warn("listing PKCS#11 tokens failed", "err", err)
		return
	}
	seen := map[string]wire.Token{}
	for _, tok := range resp.Tokens {
		if b.skip(&tok) {
			continue
		}
		id := DeviceID(tok.Manufacturer, tok.Model, tok.Serial)
		if _, dup := seen[id]; !dup {
			seen[id] = tok
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.scans++
	for id, tok := range seen {
		if old, ok := b.devices[id]; ok && reflect.DeepEqual(old.tok, tok) {
			continue
		}
		d := newDevice(b, tok) // parses the keys and certificates once
		b.devices[id] = d
		host.Attach(d)
	}
	for id := range b.devices {
		if _, ok := seen[id]; !ok {
			delete(b.devices, id)
			host.Detach(id)
		}
	}
	b.notifyLocked()
}

// skip reports whether the token is in a reader that the native PIV path
// serves.
func (b *Backend) skip(tok *wire.Token) bool {
	if b.cfg.IncludePIV || b.cfg.SkipReader == nil {
		return false
	}
	r := readerOf(tok)
	return r != "" && b.cfg.SkipReader(r)
}
