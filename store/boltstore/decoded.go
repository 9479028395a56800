package boltstore

import (
	"bytes"
	"sync"

	"github.com/hwauthd/hwauthd/store"
)

// decodedSize bounds the decoded records kept: a device's own users' records,
// not the whole registry.
const decodedSize = 2048

// decodedBytes bounds the memory the kept records take (their bytes, the
// key, and the decoded copies of their byte fields): a record's size is
// set by its certificate, which comes from the card, so 2,048 records of
// large certificates could otherwise hold hundreds of megabytes.
const decodedBytes = 8 << 20

// heldBytes is what one kept record counts against decodedBytes.
func heldBytes(v []byte, r store.Registration) int {
	return len(v) + len(r.PublicKey) + len(r.Certificate) + len(r.CredentialID)
}

// decodedRecords memoizes decodeRegistration by the record's exact bytes.
// Decoding is a pure function of the bytes, so an entry can never be stale:
// a change to a registration changes its record's bytes, which then miss and
// are decoded afresh (the old entry is simply never asked for again). Only
// records that decode are kept; Default, which the record does not hold, is
// set by the callers on each read. The zero value is ready to use; a nil
// *decodedRecords (noMemo) decodes every time.
type decodedRecords struct {
	mu    sync.Mutex
	m     map[string]decoded
	bytes int // heldBytes of the records in m
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
	size := heldBytes(v, r)
	if size > decodedBytes/16 {
		return r, seq, nil // one record would take too much of the memo
	}
	d.mu.Lock()
	if d.m == nil {
		d.m = make(map[string]decoded)
	}
	if _, ok := d.m[string(v)]; !ok { // another reader may have added it
		for k, e := range d.m { // arbitrary entries: map iteration order is random
			if len(d.m) < decodedSize && d.bytes+size <= decodedBytes {
				break
			}
			delete(d.m, k)
			d.bytes -= heldBytes([]byte(k), e.reg)
		}
		d.m[string(v)] = decoded{cloneBytes(r), seq}
		d.bytes += size
	}
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
