package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
)

// The server speaks HTTP/1.1 itself over each connection instead of going
// through net/http's Server: per request net/http starts a goroutine that
// reads ahead on the connection (to notice a client that goes away) and
// stops it again with a deadline, which woke two or three more threads of
// the daemon per request and doubled the time of a status request between
// two processes. Here a connection's goroutine reads a request
// (http.ReadRequest, the standard parser), runs the handler and writes the
// whole answer in one write. Only a handler still running after
// watchDelay gets the read-ahead that cancels its context when the client
// goes away (a stream, a card operation); the requests that answer at once
// never pay for it.

const (
	// maxHeaderBytes bounds a request's line and headers. The header
	// parser turns a head of tiny headers into a map about 20 times its
	// size: at net/http's default of 1 MiB, one user's 32 connections made
	// the server allocate 887 MiB (TestHeadFloodMemoryBounded); at 8 KiB,
	// 6 MiB. hwauthd's clients send heads of a few hundred bytes.
	maxHeaderBytes = 8 << 10
	// watchDelay is how long a handler runs before the connection is
	// watched for the client going away.
	watchDelay = 10 * time.Millisecond
)

// connState tells Shutdown whether a connection waits for a request (idle:
// it may be closed) or serves one (it finishes first).
type connState int

const (
	stateActive connState = iota
	stateIdle
)

// serverConn is one accepted connection and its request loop.
type serverConn struct {
	s    *Server
	c    net.Conn
	cr   connReader
	br   *bufio.Reader
	ctx  context.Context // carries the peer (connContext)
	wbuf []byte
	// body and header are the answer's body and headers, kept for the
	// connection's next answer.
	body   []byte
	header http.Header
	state  connState // guarded by s.mu
}

// connReader reads the connection for the request parser: within a bound
// while a request head is read, and after a byte the read-ahead took.
type connReader struct {
	c net.Conn
	// remain is how much the head may still take; negative: no bound.
	remain     int64
	pending    byte
	hasPending bool
	// buf is the read buffer's whole array: bufio's first fill hands
	// over all of it (later reads straight into a large body buffer are
	// not it, and are not kept).
	buf []byte
}

// wipeConsumed zeroes the read buffer and the read-ahead's byte when
// every byte read from the connection has been consumed (none buffered,
// no byte pending): an idle connection then keeps nothing a client sent,
// whatever path a body took through the buffer.
func (r *connReader) wipeConsumed(buffered int) {
	if buffered != 0 || r.hasPending {
		return
	}
	clear(r.buf)
	r.pending = 0
}

// Read reads the byte the read-ahead took first, then the connection.
func (r *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.buf == nil && len(p) == readBufferSize {
		r.buf = p
	}
	if r.hasPending {
		p[0], r.hasPending = r.pending, false
		if r.remain > 0 {
			r.remain--
		}
		return 1, nil
	}
	if r.remain == 0 {
		return 0, errHeadTooLarge
	}
	if r.remain > 0 && int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	n, err := r.c.Read(p)
	if r.remain > 0 {
		r.remain -= int64(n)
	}
	return n, err
}

var errHeadTooLarge = errors.New("request head too large")

// readBufferSize is the size of a connection's read buffer.
const readBufferSize = 4096

// Serve accepts connections on ln, within Config.Limits, until Shutdown is
// called or ctx ends (then it shuts down gracefully within
// Config.ShutdownTimeout). It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		_ = s.Shutdown(sctx)
	})
	defer stop()
	ll := &limitListener{Listener: ln, lim: s.lim, log: s.cfg.Logger, peerOf: s.cfg.PeerOf}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := ll.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			if temporaryAcceptError(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.Logger.Warn("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff) // as net/http's Server: out of descriptors, wait for some to close
				continue
			}
			return err
		}
		backoff = 0
		sc := &serverConn{s: s, c: c, cr: connReader{c: c, remain: -1}}
		if !s.track(sc) {
			_ = c.Close()
			return nil
		}
		go sc.serve()
	}
}

// temporaryAcceptError tells an accept that failed for want of resources,
// which passes, from a listener that is gone.
func temporaryAcceptError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// isClosing reports whether Shutdown has been called.
func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// track registers a new connection; false once the server shuts down.
func (s *Server) track(sc *serverConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[sc] = struct{}{}
	return true
}

// setState records a connection's state; it reports false when the server
// shuts down and the connection is to end instead of serving a request.
func (s *Server) setState(sc *serverConn, st connState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc.state = st
	return !s.closing
}

// Shutdown ends every request context (so streams return), stops accepting,
// closes idle connections and waits until the others have finished their
// request, or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	s.closing = true
	var err error
	for _, ln := range s.listeners {
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	s.listeners = nil
	s.mu.Unlock()
	wait := time.Millisecond
	for {
		s.mu.Lock()
		for sc := range s.conns {
			if sc.state == stateIdle {
				_ = sc.c.Close()
			}
		}
		left := len(s.conns)
		s.mu.Unlock()
		if left == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait): // polling as net/http's Shutdown does
			wait = min(2*wait, 100*time.Millisecond)
		}
	}
}

// serve reads and answers requests until the client closes the connection,
// a request asks to close it, a timeout passes or the server shuts down.
func (sc *serverConn) serve() {
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			sc.s.cfg.Logger.Error("connection panic", "panic", fmt.Sprint(p))
		}
		if pc, ok := sc.c.(*peerConn); ok {
			pc.reads.clearAll()
		}
		_ = sc.c.Close()
		sc.s.mu.Lock()
		delete(sc.s.conns, sc)
		sc.s.mu.Unlock()
	}()
	sc.ctx = connContext(sc.s.base, sc.c)
	sc.br = bufio.NewReaderSize(&sc.cr, readBufferSize)
	if pc, ok := sc.c.(*peerConn); ok {
		// A body is zeroed where it was read, not where the next
		// requests wait in sc.br (wipe.go); only this goroutine reads sc.br.
		pc.reads.mu.Lock()
		pc.reads.unread = func() []byte { b, _ := sc.br.Peek(sc.br.Buffered()); return b }
		pc.reads.mu.Unlock()
	}
	for first := true; ; first = false {
		if !first {
			sc.cr.wipeConsumed(sc.br.Buffered())
			// Wait for the next request within the idle timeout.
			if !sc.s.setState(sc, stateIdle) {
				return
			}
			_ = sc.c.SetReadDeadline(time.Now().Add(sc.s.cfg.IdleTimeout))
			if _, err := sc.br.Peek(1); err != nil {
				return
			}
		}
		if !sc.s.setState(sc, stateActive) {
			return
		}
		_ = sc.c.SetReadDeadline(time.Now().Add(sc.s.cfg.ReadHeaderTimeout))
		sc.cr.remain = maxHeaderBytes
		req, err := http.ReadRequest(sc.br)
		if err != nil && sc.cr.remain == 0 {
			// The parser may report the line the limit cut as malformed.
			err = errHeadTooLarge
		}
		sc.cr.remain = -1
		if err != nil {
			sc.refuseRequest(err)
			return
		}
		if req.ProtoMajor != 1 {
			// HTTP/2's preface and other versions: net/http answers 505 too.
			sc.refuse(req.Method, http.StatusHTTPVersionNotSupported, ipc.Errorf(ipc.CodeBadRequest, "%s is not supported; hwauthd speaks HTTP/1.1", req.Proto))
			return
		}
		_ = sc.c.SetReadDeadline(time.Time{})
		if !sc.serveRequest(req) {
			return
		}
	}
}

// write writes b to the client within Config.WriteTimeout: a client that
// stops reading answers is cut off, however long the handler before ran.
// The deadline is cleared once b is written, so that a quiet stream or an
// idle connection keeps no timer that would wake the daemon.
func (sc *serverConn) write(b []byte) (int, error) {
	_ = sc.c.SetWriteDeadline(time.Now().Add(sc.s.cfg.WriteTimeout))
	n, err := sc.c.Write(b)
	if err == nil {
		_ = sc.c.SetWriteDeadline(time.Time{})
	}
	return n, err
}

// refuseRequest answers a request that could not be read, unless the client
// simply went away or stopped sending.
func (sc *serverConn) refuseRequest(err error) {
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) && ne.Timeout() {
		return
	}
	e := ipc.Errorf(ipc.CodeBadRequest, "malformed HTTP request")
	if errors.Is(err, errHeadTooLarge) {
		e = ipc.Errorf(ipc.CodeTooLarge, "request line and headers are larger than %d bytes", maxHeaderBytes)
	}
	sc.refuse(http.MethodGet, e.Status(), e)
}

// refuse answers a request of method with e and status, ends the
// connection and drops what the client still sends for a while (linger),
// so that it reads the answer instead of a reset.
func (sc *serverConn) refuse(method string, status int, e *ipc.Error) {
	w := &response{sc: sc, req: &http.Request{Method: method}, close: true}
	_ = WriteJSON(w, status, e)
	w.finish()
	sc.linger()
}

// request is the state of one request: its context (it is the request's
// context, answering the values the server passes to the route itself),
// its answer, the read-ahead and the writers the route table wraps around
// the answer. One allocation per request instead of one per piece, and one
// copy of the http.Request (WithContext) instead of one per context value.
// It is not reused for the next request: a handler's goroutine may keep
// the request's context after the handler returned.
type request struct {
	context.Context // the request's cancel context
	w               response
	watch           readAhead
	rw              responseWriter
	mw              muxErrorWriter
	env             requestEnv
	// body is the body read for a BodyAccess check, when hasBody.
	body    []byte
	hasBody bool
}

// requestKey finds the *request in a request's context.
type requestKey struct{}

// Value answers the values the server gives the route (requestEnvKey,
// bodyKey) and asks the connection's context for the others.
func (q *request) Value(key any) any {
	switch key.(type) {
	case requestKey:
		return q
	case requestEnvKey:
		return &q.env
	case bodyKey:
		if q.hasBody {
			return q.body
		}
		return nil
	}
	return q.Context.Value(key)
}

// requestOf returns r's *request, or nil for a request that did not come
// through a connection of the server (tests of the handler).
func requestOf(r *http.Request) *request {
	q, _ := r.Context().Value(requestKey{}).(*request)
	return q
}

// serveRequest runs the handler for req and writes its answer; it reports
// whether the connection may carry another request.
func (sc *serverConn) serveRequest(req *http.Request) bool {
	ctx, cancel := context.WithCancel(sc.ctx)
	defer cancel()
	q := &request{Context: ctx}
	req = req.WithContext(q)
	w := &q.w
	*w = response{sc: sc, req: req, close: req.Close || req.ProtoMajor != 1 || req.ProtoMinor == 0, body: sc.body[:0]}
	watch := &q.watch
	watch.sc, watch.cancel, watch.bodyDone = sc, cancel, true
	if req.Body != nil && req.Body != http.NoBody {
		body := &requestBody{rc: req.Body, w: w, watch: watch}
		watch.bodyDone = false
		if expect := req.Header.Get("Expect"); expect != "" {
			if !strings.EqualFold(expect, "100-continue") {
				w.close = true
				_ = WriteJSON(w, http.StatusExpectationFailed, ipc.Errorf(ipc.CodeBadRequest, "unsupported Expect: %q", expect))
				w.finish()
				return false
			}
			// An HTTP/1.0 client knows no interim answer (RFC 9110 10.1.1).
			body.sendContinue = req.ProtoAtLeast(1, 1)
		}
		req.Body = body
	}
	sc.s.watch(watch)
	sc.s.handler.ServeHTTP(w, req)
	sc.s.unwatch(watch)
	clientGone := watch.stop()
	b, hasBody := req.Body.(*requestBody)
	// A body left unread (too large, cut short, badly chunked) leaves the
	// next request's start unknown: the answer says the connection ends.
	unread := hasBody && !b.eof
	w.close = w.close || unread
	w.finish()
	if cap(w.body) <= 64<<10 {
		sc.body = w.body[:0]
	}
	if unread {
		sc.linger()
		return false
	}
	return !w.close && w.err == nil && !clientGone
}

// watch registers a request whose handler starts; the sweeper starts its
// read-ahead once it has run for watchDelay. One sweeper for all requests,
// running only while some are in flight: a timer per request woke the
// daemon's idle threads on every request (adding a timer that fires before
// the netpoller's wait interrupts the wait).
func (s *Server) watch(a *readAhead) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight[a] = false
	if !s.sweeping {
		s.sweeping = true
		go s.sweep()
	}
}

// unwatch removes a request whose handler returned.
func (s *Server) unwatch(a *readAhead) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, a)
}

// sweep starts the read-ahead of every request it finds in flight twice in
// a row, watchDelay apart, and ends when none is left.
func (s *Server) sweep() {
	for {
		time.Sleep(watchDelay) // the sweeper's period; it runs only while requests are in flight
		s.mu.Lock()
		if len(s.inflight) == 0 {
			s.sweeping = false
			s.mu.Unlock()
			return
		}
		for a, seen := range s.inflight {
			if seen {
				a.due()
				delete(s.inflight, a)
			} else {
				s.inflight[a] = true
			}
		}
		s.mu.Unlock()
	}
}

// lingerTimeout bounds how long a connection whose body was left unread
// is read after its answer, as net/http's Server waits before closing.
const lingerTimeout = 500 * time.Millisecond

// linger reads and drops what the client still sends, for at most
// lingerTimeout, after telling it the answer is complete: a client still
// writing a body the server refused (too large) would otherwise fail with
// EPIPE before reading the answer. The bytes dropped are zeroed (they may
// hold a PIN).
func (sc *serverConn) linger() {
	if cw, ok := sc.c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = sc.c.SetReadDeadline(time.Now().Add(lingerTimeout))
	buf := make([]byte, 4096)
	for {
		n, err := sc.c.Read(buf)
		clear(buf[:n])
		if err != nil {
			return
		}
	}
}

// readAhead watches a connection whose handler runs for long for the
// client going away, and cancels the request's context when it does, as
// net/http's Server does for every request. It starts once watchDelay has
// passed (between one and two periods of the sweeper) and the request's body has been read (the handler reads the body
// itself before that).
type readAhead struct {
	sc       *serverConn
	cancel   context.CancelFunc
	mu       sync.Mutex
	bodyDone bool
	waited   bool
	stopped  bool
	running  bool
	gone     bool
	exited   chan struct{}
}

// due is called after watchDelay.
func (a *readAhead) due() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.waited = true
	a.startLocked()
}

// bodyRead is called when the handler has read the body to its end.
func (a *readAhead) bodyRead() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.bodyDone = true
	a.startLocked()
}

func (a *readAhead) startLocked() {
	if !a.waited || !a.bodyDone || a.stopped || a.running {
		return
	}
	a.running = true
	a.exited = make(chan struct{})
	go a.read()
}

// read waits for a byte or the end of the connection. A byte is the start
// of the client's next request and is kept for the parser.
func (a *readAhead) read() {
	defer close(a.exited)
	a.mu.Lock()
	// A byte an earlier read-ahead took is still to be parsed: the client
	// has started its next request already, and a second byte would take
	// the first one's place (it would be lost, and the requests misframed).
	if a.stopped || a.sc.cr.hasPending {
		a.mu.Unlock()
		return
	}
	// The body's read deadline, if any, is over: the body has been read.
	_ = a.sc.c.SetReadDeadline(time.Time{})
	a.mu.Unlock()
	var b [1]byte
	n, _ := a.sc.c.Read(b[:])
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case n == 1:
		a.sc.cr.pending, a.sc.cr.hasPending = b[0], true
	case !a.stopped:
		a.gone = true
		a.cancel()
	}
}

// stop ends the watch after the handler returned; it reports whether the
// client went away.
func (a *readAhead) stop() (clientGone bool) {
	a.mu.Lock()
	a.stopped = true
	running := a.running
	if running {
		_ = a.sc.c.SetReadDeadline(longAgo)
	}
	a.mu.Unlock()
	if !running {
		return false
	}
	<-a.exited
	_ = a.sc.c.SetReadDeadline(time.Time{})
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gone
}

// longAgo is a deadline in the past: it makes a blocked read return.
var longAgo = time.Unix(1, 0)

// requestBody is a request's body: it answers "100 Continue" before the
// first read when the client waits for it, and tells the read-ahead when
// the body has been read.
type requestBody struct {
	rc           io.ReadCloser
	w            *response
	watch        *readAhead
	sendContinue bool
	// eof: the body was read to its end; broken: it ended in an error.
	eof    bool
	broken bool
}

func (b *requestBody) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	if b.sendContinue {
		b.sendContinue = false
		if !b.w.headerSent {
			if _, err := b.w.sc.write([]byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil {
				return 0, err
			}
		}
	}
	n, err := b.rc.Read(p)
	switch {
	case err == nil:
	case err == io.EOF && !b.broken:
		b.eof = true
		b.watch.bodyRead()
	default:
		// Cut short or malformed: net/http's body answers io.EOF to the
		// next read, but where the next request starts stays unknown.
		b.broken = true
	}
	return n, err
}

func (b *requestBody) Close() error { return b.rc.Close() }

// response is the http.ResponseWriter of one request. The answer is kept
// until the handler returns and then written in one write with its
// Content-Length; a handler that flushes (a stream) sends its head at
// once and its body in chunks.
type response struct {
	sc          *serverConn
	req         *http.Request
	header      http.Header
	status      int
	wroteHeader bool
	headerSent  bool // the head is on the wire: the body goes in chunks
	body        []byte
	close       bool // end the connection after this answer
	err         error
}

// Header returns the answer's headers.
func (w *response) Header() http.Header {
	if w.header == nil {
		if w.sc.header == nil {
			w.sc.header = make(http.Header, 2)
		}
		clear(w.sc.header)
		w.header = w.sc.header
	}
	return w.header
}

// WriteHeader sets the status, once.
func (w *response) WriteHeader(code int) {
	if w.wroteHeader || code < 200 {
		return
	}
	w.wroteHeader = true
	w.status = code
}

// Write adds to the answer's body.
func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.headerSent && w.req.Method == http.MethodHead {
		return len(p), nil // as net/http: the answer to HEAD has no body
	}
	if w.headerSent {
		w.body = strconv.AppendInt(w.body, int64(len(p)), 16)
		w.body = append(w.body, "\r\n"...)
		w.body = append(w.body, p...)
		w.body = append(w.body, "\r\n"...)
		return len(p), nil
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// FlushError sends what was written so far: the first time the head (the
// body follows in chunks), then the chunks written since.
func (w *response) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	var out []byte
	if !w.headerSent {
		w.headerSent = true
		out = w.appendHead(w.sc.wbuf[:0], -1)
		if len(w.body) > 0 && w.req.Method != http.MethodHead {
			out = strconv.AppendInt(out, int64(len(w.body)), 16)
			out = append(out, "\r\n"...)
			out = append(out, w.body...)
			out = append(out, "\r\n"...)
		}
	} else {
		out = append(w.sc.wbuf[:0], w.body...)
	}
	w.body = w.body[:0]
	w.send(out)
	return w.err
}

// Flush is FlushError for http.Flusher.
func (w *response) Flush() { _ = w.FlushError() }

// SetReadDeadline sets the connection's read deadline (http.ResponseController).
func (w *response) SetReadDeadline(t time.Time) error { return w.sc.c.SetReadDeadline(t) }

// SetWriteDeadline sets the connection's write deadline (http.ResponseController).
func (w *response) SetWriteDeadline(t time.Time) error { return w.sc.c.SetWriteDeadline(t) }

// finish writes the answer, or the last chunk of a flushed one.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return
	}
	if w.headerSent {
		if w.req.Method != http.MethodHead {
			out := append(w.sc.wbuf[:0], w.body...)
			w.send(append(out, "0\r\n\r\n"...))
		}
		return
	}
	if w.header.Get("Content-Type") == "" && len(w.body) > 0 {
		w.Header().Set("Content-Type", http.DetectContentType(w.body))
	}
	out := w.appendHead(w.sc.wbuf[:0], len(w.body))
	if w.req.Method != http.MethodHead && bodyAllowed(w.status) {
		out = append(out, w.body...)
	}
	w.send(out)
}

// send writes out in one write and keeps its buffer for the next answer.
func (w *response) send(out []byte) {
	if _, err := w.sc.write(out); err != nil {
		w.err = err
		w.close = true
	}
	if cap(out) <= 64<<10 {
		w.sc.wbuf = out[:0]
	}
}

// appendHead appends the status line and headers; contentLength < 0 means
// a chunked body.
func (w *response) appendHead(b []byte, contentLength int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\n"...)
	keys := make([]string, 0, len(w.header))
	for k := range w.header {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection":
			continue // the server's own
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range w.header[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendHeaderValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	switch {
	case !bodyAllowed(w.status):
	case contentLength < 0:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	default:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(contentLength), 10)
		b = append(b, "\r\n"...)
	}
	if w.close || w.sc.s.isClosing() {
		w.close = true
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}

// appendHeaderValue appends v with line breaks replaced by spaces, as
// net/http does, so that no value can start a header of its own.
func appendHeaderValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// bodyAllowed reports whether an answer with status may have a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
