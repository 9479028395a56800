package server

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"unsafe"
)

// net/http reads each connection into a pooled bufio buffer that it never
// clears, so a request body holding a PIN would stay there, in this
// connection's buffer and later in the pool's, until overwritten (issue #13,
// defect 6). The server owns that read path: every read of an admitted
// connection is remembered (readLog), and once a body has been read, the
// bytes it came in are zeroed in place. Only the body's own bytes are
// cleared: they are consumed by then, while what follows them (a pipelined
// request) is left alone.

// readRegions is how many recent reads a connection remembers; a body
// arrives in the last one or two.
const readRegions = 4

// readLog remembers the buffers the last reads of a connection filled.
type readLog struct {
	mu      sync.Mutex
	regions [readRegions][]byte
	next    int
	// unread returns the bytes read from the connection but not consumed
	// yet (pipelined requests after the body): a wipe leaves them alone,
	// even where they equal the body. Nil: none.
	unread func() []byte
}

// add remembers that b was just filled from the connection. One-byte reads
// (net/http's read-ahead of the next request) are not remembered.
func (l *readLog) add(b []byte) {
	if len(b) < 2 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.regions[l.next%readRegions] = b
	l.next++
}

// wipe zeroes body wherever the remembered reads hold it: whole in one read,
// or split over two consecutive ones.
func (l *readLog) wipe(body []byte) {
	if len(body) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var unread []byte
	if l.unread != nil {
		unread = l.unread()
	}
	var prev []byte
	for k := range readRegions {
		r := l.regions[(l.next+k)%readRegions]
		if r == nil {
			continue
		}
		for off := 0; ; {
			i := bytes.Index(r[off:], body)
			if i < 0 {
				break
			}
			at := r[off+i : off+i+len(body)]
			if !overlaps(at, unread) {
				clear(at)
			}
			off += i + len(body)
		}
		if prev != nil {
			wipeSplit(prev, r, body, unread)
		}
		prev = r
	}
}

// clearAll zeroes every remembered read, once the connection has ended: a
// body no route read (an unknown path or method, a refused Expect) is in
// them, and may hold a PIN.
func (l *readLog) clearAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.regions {
		clear(l.regions[i])
		l.regions[i] = nil
	}
}

// wipeSplit zeroes body where a ends with its start and b begins with the
// rest, unless that is still unread.
func wipeSplit(a, b, body, unread []byte) {
	for k := min(len(a), len(body)-1); k > 0; k-- {
		if bytes.HasSuffix(a, body[:k]) && bytes.HasPrefix(b, body[k:]) {
			if overlaps(a[len(a)-k:], unread) || overlaps(b[:len(body)-k], unread) {
				return
			}
			clear(a[len(a)-k:])
			clear(b[:len(body)-k])
			return
		}
	}
}

// overlaps reports whether a and b share memory.
func overlaps(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, b0 := uintptr(unsafe.Pointer(unsafe.SliceData(a))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return a0 < b0+uintptr(len(b)) && b0 < a0+uintptr(len(a))
}

// wipeRead zeroes body where the request's connection read it.
func wipeRead(r *http.Request, body []byte) {
	if reads, ok := r.Context().Value(readLogKey{}).(*readLog); ok {
		reads.wipe(body)
	}
}

// wipeUnreadBody reads what the handler left of the body (a refused
// request's PIN, say), up to the body limit, and zeroes it where it was
// read, before net/http would drain it into its buffer and leave it there.
func wipeUnreadBody(r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	limit := envFrom(r).maxBody
	rest, _ := readAllWiped(io.LimitReader(r.Body, limit+1), min(r.ContentLength, limit))
	wipeRead(r, rest)
	clear(rest)
}
