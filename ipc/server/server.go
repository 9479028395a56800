package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes      = 64 << 10
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultBodyReadTimeout   = 10 * time.Second
	DefaultIdleTimeout       = time.Minute
	DefaultWriteTimeout      = 10 * time.Second
	DefaultShutdownTimeout   = 5 * time.Second
)

// HandlerFunc serves one route. It writes a success response itself and
// returns an error otherwise; the server turns the error into the envelope.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Route is one entry of the route table. Pattern is a Go 1.22 ServeMux path
// pattern without the method ("/v1/authenticators/{id}"); Access is required.
type Route struct {
	Method  string
	Pattern string
	Access  Access
	Handler HandlerFunc
}

// Config configures a Server. The zero value is usable.
type Config struct {
	// MapError turns a handler's error that is not an *ipc.Error into one;
	// nil or a nil result means internal.
	MapError func(error) *ipc.Error
	// MaxBodyBytes bounds request bodies read by DecodeJSON.
	MaxBodyBytes int64
	// ReadHeaderTimeout, BodyReadTimeout and IdleTimeout bound slow and
	// idle clients: the request head, the body, the wait for the next
	// request on a kept-alive connection.
	ReadHeaderTimeout time.Duration
	BodyReadTimeout   time.Duration
	IdleTimeout       time.Duration
	// WriteTimeout bounds each write of an answer or of a stream's line:
	// a client that stops reading is cut off after it, and a long handler
	// or stream is not (the deadline starts at the write).
	WriteTimeout time.Duration
	// Limits bound the open connections and streams.
	Limits Limits
	// ShutdownTimeout bounds the graceful shutdown when Serve's context ends.
	ShutdownTimeout time.Duration
	// Logger receives handler errors and panics (never request bodies).
	Logger *slog.Logger
	// PeerOf reads the identity of a new connection's peer; nil means
	// ReadPeer (SO_PEERCRED). The in-process test harness gives each of its
	// in-memory connections the identity of the client it plays.
	PeerOf func(net.Conn) (Peer, error)
}

// Server serves a route table over a listener (conn.go).
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	handler http.Handler
	base    context.Context
	cancel  context.CancelFunc
	lim     *connLimiter

	mu        sync.Mutex
	closing   bool
	listeners []net.Listener
	conns     map[*serverConn]struct{}
	// inflight are the requests being handled, true once the sweeper has
	// seen them (conn.go).
	inflight map[*readAhead]bool
	sweeping bool
}

// New builds a server for routes. It refuses a route without Access, Handler,
// method or pattern, and duplicate or invalid patterns.
func New(cfg Config, routes []Route) (s *Server, err error) {
	cfg = withDefaults(cfg)
	s = &Server{cfg: cfg, mux: http.NewServeMux(), lim: newConnLimiter(cfg.Limits), conns: map[*serverConn]struct{}{}, inflight: map[*readAhead]bool{}}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("route table: %v", p)
		}
	}()
	for _, rt := range routes {
		if err := checkRoute(rt); err != nil {
			return nil, err
		}
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.handler = http.HandlerFunc(s.serveHTTP)
	return s, nil
}

// withDefaults fills unset fields of cfg.
func withDefaults(cfg Config) Config {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PeerOf == nil {
		cfg.PeerOf = ReadPeer
	}
	return cfg
}

// checkRoute validates one route: deny by default means no Access, no route.
func checkRoute(rt Route) error {
	name := rt.Method + " " + rt.Pattern
	switch {
	case rt.Method == "" || rt.Pattern == "":
		return fmt.Errorf("route %q: method and pattern are required", name)
	case rt.Access == nil:
		return fmt.Errorf("route %q has no access checker", name)
	case rt.Handler == nil:
		return fmt.Errorf("route %q has no handler", name)
	}
	return nil
}

// Handler returns the server's HTTP handler, for tests that serve requests
// without a socket (give them a peer with WithPeer).
func (s *Server) Handler() http.Handler { return s.handler }

// serveHTTP dispatches to the route, answering unknown paths and methods in
// the JSON envelope instead of ServeMux's plain text.
// A path that is not in canonical form (with "..", "." or "//") is refused
// in the envelope rather than redirected.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.EscapedPath(); r.Method != http.MethodConnect && p != cleanPath(p) {
		_ = WriteJSON(w, http.StatusBadRequest, ipc.Errorf(ipc.CodeBadRequest,
			"path %q is not in canonical form (no \"..\", \".\" or empty segments); did you mean %s?", p, cleanPath(p)))
		return
	}
	// One match per request: ServeMux records the pattern it matched in
	// r.Pattern (and the path values) before it calls the route, so
	// muxErrorWriter tells ServeMux's own 404 and 405 (no pattern) from a
	// route's answers, which reach the route's writer unwrapped (wrap).
	var mw *muxErrorWriter
	if q := requestOf(r); q != nil {
		mw = &q.mw
	} else {
		mw = new(muxErrorWriter)
	}
	*mw = muxErrorWriter{ResponseWriter: w, r: r}
	s.mux.ServeHTTP(mw, r)
}

// cleanPath is ServeMux's canonical form of a path: rooted, without "." and
// ".." elements or repeated slashes, keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// wrap applies the peer check, the route's access check, body limit, error
// envelope and panic recovery around a handler.
func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mw, ok := w.(*muxErrorWriter); ok {
			w = mw.ResponseWriter // a route's answers are its own
		}
		q := requestOf(r)
		if q == nil { // not from a connection of the server: a test of the handler
			q = &request{Context: r.Context()}
			r = r.WithContext(q)
		}
		rw := &q.rw
		*rw = responseWriter{ResponseWriter: w}
		defer s.recoverPanic(rw, r)
		q.env = s.requestEnv(rw, r)
		defer wipeUnreadBody(r)
		if _, ok := rt.Access.(BodyAccess); ok {
			// The checker reads the body: it is read once, here, and
			// DecodeJSON decodes the same bytes, zeroed after the handler.
			body, err := readBody(r)
			defer clear(body)
			if err != nil {
				s.writeError(rw, r, err)
				return
			}
			q.body, q.hasBody = body, true
		}
		if err := s.authorize(rt, r); err != nil {
			s.writeError(rw, r, err)
			return
		}
		if err := rt.Handler(rw, r); err != nil {
			s.writeError(rw, r, err)
		}
	})
}

// requestEnv is what DecodeJSON and StreamJSONLines need of the server.
type requestEnv struct {
	maxBody int64
	lim     *connLimiter
	// deadline, when set, is the writer whose connection has the body's
	// read deadline, which bodyRead ends.
	deadline http.ResponseWriter
}

// bodyRead ends the body's read deadline once the body is read.
func (e *requestEnv) bodyRead() {
	if e.deadline != nil {
		_ = http.NewResponseController(e.deadline).SetReadDeadline(time.Time{})
		e.deadline = nil
	}
}

type requestEnvKey struct{}

// requestEnv sets the body's read deadline when the request has a body and
// returns the request's environment. The deadline is set only then, and
// ends once the body is read: a long handler's read-ahead (conn.go) then
// waits for the client without one.
func (s *Server) requestEnv(w http.ResponseWriter, r *http.Request) requestEnv {
	env := requestEnv{maxBody: s.cfg.MaxBodyBytes, lim: s.lim}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		if http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout)) == nil {
			env.deadline = w
		}
	}
	return env
}

// envFrom returns the request's environment, or defaults for a request that
// did not come through a Server (tests of handlers).
func envFrom(r *http.Request) *requestEnv {
	if env, ok := r.Context().Value(requestEnvKey{}).(*requestEnv); ok {
		return env
	}
	return &requestEnv{maxBody: DefaultMaxBodyBytes}
}

// authorize refuses peers without credentials, then asks the route's Access.
func (s *Server) authorize(rt Route, r *http.Request) error {
	p, ok := PeerFromContext(r.Context())
	if !ok {
		return ipc.Errorf(ipc.CodeUnauthorized, "not allowed: the caller's credentials could not be read")
	}
	var err error
	if ba, ok := rt.Access.(BodyAccess); ok {
		body, _ := r.Context().Value(bodyKey{}).([]byte)
		err = ba.CheckAccessBody(r, p, body)
	} else {
		err = rt.Access.CheckAccess(r, p)
	}
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*ipc.Error](err); ok {
		return e
	}
	s.cfg.Logger.Warn("access check failed", "method", r.Method, "path", r.URL.Path, "uid", p.UID, "err", err)
	return ipc.Errorf(ipc.CodeUnauthorized, "not allowed")
}

// recoverPanic answers internal after a handler panic and keeps serving.
func (s *Server) recoverPanic(w *responseWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	s.cfg.Logger.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	s.writeError(w, r, ipc.Errorf(ipc.CodeInternal, "internal error"))
}

// writeError writes err in the envelope, unless the response has started.
func (s *Server) writeError(w *responseWriter, r *http.Request, err error) {
	e := s.toAPIError(r, err)
	if w.wroteHeader {
		s.cfg.Logger.Warn("error after response started", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", err)
		return
	}
	_ = WriteJSON(w, e.Status(), e)
}

// toAPIError maps err: *ipc.Error as is, else Config.MapError, else internal.
func (s *Server) toAPIError(r *http.Request, err error) *ipc.Error {
	if e, ok := errors.AsType[*ipc.Error](err); ok {
		return e
	}
	if s.cfg.MapError != nil {
		if e := s.cfg.MapError(err); e != nil {
			return e
		}
	}
	s.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return ipc.Errorf(ipc.CodeInternal, "internal error; see the hwauthd log")
}

// responseWriter remembers whether the response has started.
type responseWriter struct {
	http.ResponseWriter
	wroteHeader bool
}

// WriteHeader records that the response started.
func (w *responseWriter) WriteHeader(code int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

// Write records that the response started.
func (w *responseWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// muxErrorWriter replaces ServeMux's plain-text 404 and 405 with the
// envelope.
type muxErrorWriter struct {
	http.ResponseWriter
	r       *http.Request
	swallow bool
}

// WriteHeader writes the envelope for ServeMux's 404 and 405.
func (w *muxErrorWriter) WriteHeader(code int) {
	if w.r.Pattern != "" {
		w.ResponseWriter.WriteHeader(code) // a route matched: not ServeMux's
		return
	}
	var e *ipc.Error
	switch code {
	case http.StatusNotFound:
		e = ipc.Errorf(ipc.CodeNotFound, "no such path: %s", w.r.URL.Path)
	case http.StatusMethodNotAllowed:
		e = ipc.Errorf(ipc.CodeMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", w.r.Method, w.r.URL.Path, w.Header().Get("Allow"))
	default:
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.swallow = true
	w.Header().Del("X-Content-Type-Options")
	_ = WriteJSON(w.ResponseWriter, code, e)
}

// Write drops ServeMux's plain-text body after the envelope.
func (w *muxErrorWriter) Write(b []byte) (int, error) {
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}
