package boltstore

import (
	"bytes"
	"sync"

	"github.com/hwauthd/hwauthd/store"
)

// decodedSize bounds the decoded records kept: a device's own users' records,
// not the whole registry.
const decodedSize = 2048

// decodedRecords memoizes decodeRegistration by the record's exact bytes.
// Decoding is a pure function of the bytes, so an entry can never be stale:
// a change to a registration changes its record's bytes, which then miss and
// are decoded afresh (the old entry is simply never asked for again). Only
// records that decode are kept; Default, which the record does not hold, is
// set by the callers on each read. The zero value is ready to use; a nil
// *decodedRecords (noMemo) decodes every time.
type decodedRecords struct {
	mu sync.Mutex
	m  map[string]decoded
}

// noMemo decodes every time: the full check reads every record once, and
// going through the memo would only churn it.
var noMemo *decodedRecords

// decoded is one memoized decoding.
type decoded struct {
	reg store.Registration
	seq uint64
}

// decode returns decodeRegistration(v), from the memo when v was decoded
// before. The registration returned is the caller's own: its byte slices
// are copies.
func (d *decodedRecords) decode(v []byte) (store.Registration, uint64, error) {
	if d == nil {
		return decodeRegistration(v)
	}
	d.mu.Lock()
	e, ok := d.m[string(v)]
	d.mu.Unlock()
	if ok {
		return cloneBytes(e.reg), e.seq, nil
	}
	r, seq, err := decodeRegistration(v)
	if err != nil {
		return r, seq, err
	}
	d.mu.Lock()
	if d.m == nil {
		d.m = make(map[string]decoded)
	}
	if len(d.m) >= decodedSize {
		for k := range d.m { // an arbitrary entry: map iteration order is random
			delete(d.m, k)
			break
		}
	}
	d.m[string(v)] = decoded{cloneBytes(r), seq}
	d.mu.Unlock()
	return r, seq, nil
}

// cloneBytes returns r with copies of its byte slices, so that neither the
// memo nor a caller can change the other's.
func cloneBytes(r store.Registration) store.Registration {
	r.PublicKey = bytes.Clone(r.PublicKey)
	r.Certificate = bytes.Clone(r.Certificate)
	r.CredentialID = bytes.Clone(r.CredentialID)
	return r
}
