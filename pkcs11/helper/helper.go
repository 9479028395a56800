// Package helper is the PKCS#11 side of hwauthd's module helper process
// (cmd/hwauthd-pkcs11): it loads modules with miekg/pkcs11 and answers the
// requests of package wire. It runs in its own process so that a module that
// crashes or hangs cannot take the daemon down; tests may run it in-process
// over a net.Pipe.
//
// Requests are handled concurrently, serialized per slot (one owner per
// token). Every operation opens its own session and closes it, and every
// login is followed by C_Logout: the helper never leaves a token logged in.
package helper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pkcs11/wire"
	"github.com/miekg/pkcs11"
)

// Server answers wire requests with the modules it loaded.
type Server struct {
	out   io.Writer
	outMu sync.Mutex // serializes frames on out

	mu      sync.Mutex
	modules map[string]*module // by path, set by OpLoad
	order   []string           // module paths in load order
}

// module is one loaded PKCS#11 module.
type module struct {
	path string
	ctx  *pkcs11.Ctx
	fl   *funcList

	mu    sync.Mutex
	slots map[uint]*sync.Mutex // per-slot locks
}

// Serve reads requests from rw and writes responses to it until rw fails
// (the daemon closed its end) or ctx ends. Each request is handled in its
// own goroutine.
func Serve(ctx context.Context, rw io.ReadWriter) error {
	s := &Server{out: rw, modules: map[string]*module{}}
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		req, err := wire.ReadRequest(rw)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handle(req)
		}()
	}
	return ctx.Err()
}

// handle answers one request and wipes its secrets.
func (s *Server) handle(req *wire.Request) {
	defer req.Wipe()
	resp, err := s.dispatch(req)
	if resp == nil {
		resp = &wire.Response{}
	}
	resp.ID = req.ID
	if err != nil {
		resp.Error = wire.EncodeError(err)
	}
	s.send(resp)
}

// send writes one response; a write error means the daemon is gone and the
// read loop ends on its own.
func (s *Server) send(resp *wire.Response) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	_ = wire.WriteResponse(s.out, resp)
}

func (s *Server) dispatch(req *wire.Request) (*wire.Response, error) {
	switch req.Op {
	case wire.OpLoad:
		return &wire.Response{Modules: s.load(req.Modules)}, nil
	case wire.OpList:
		return &wire.Response{Tokens: s.list()}, nil
	case wire.OpTokenInfo:
		return s.tokenInfo(req.Token)
	case wire.OpLogin:
		return nil, s.verifyPIN(req.Token, req.PIN)
	case wire.OpSetPIN:
		return nil, s.setPIN(req.Token, req.PIN, req.NewPIN)
	case wire.OpUnblock:
		return nil, s.unblock(req.Token, req.PIN, req.NewPIN)
	case wire.OpSign:
		sig, err := s.sign(req)
		return &wire.Response{Signature: sig}, err
	}
	return nil, fmt.Errorf("unknown operation %q: %w", req.Op, hwerr.ErrInvalidInput)
}

// load loads and initializes each module not loaded yet, and starts a slot
// event watcher for those that support blocking C_WaitForSlotEvent.
func (s *Server) load(paths []string) []wire.ModuleStatus {
	out := make([]wire.ModuleStatus, 0, len(paths))
	for _, p := range paths {
		st, m := s.loadOne(p)
		out = append(out, st)
		if m != nil {
			go s.watch(m)
		}
	}
	return out
}

func (s *Server) loadOne(path string) (wire.ModuleStatus, *module) {
	st := wire.ModuleStatus{Path: path}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.modules[path]; ok {
		st.Error = "loaded twice"
		return st, nil
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		st.Error = "cannot load the module"
		return st, nil
	}
	if err := ctx.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		ctx.Destroy()
		st.Error = fmt.Sprintf("C_Initialize: %v", err)
		return st, nil
	}
	fl, err := newFuncList(path)
	if err != nil {
		st.Error = err.Error()
		return st, nil
	}
	if info, err := ctx.GetInfo(); err == nil {
		st.Library = fmt.Sprintf("%s %d.%d", trim(info.LibraryDescription), info.LibraryVersion.Major, info.LibraryVersion.Minor)
	}
	m := &module{path: path, ctx: ctx, fl: fl, slots: map[uint]*sync.Mutex{}}
	s.modules[path] = m
	s.order = append(s.order, path)
	return st, m
}

// watch blocks in C_WaitForSlotEvent (flags 0) and reports each event, until
// the module reports an error: modules without blocking slot events
// (SoftHSM2 answers CKR_FUNCTION_NOT_SUPPORTED) end it at once, and the
// daemon's Rescan, driven by PC/SC events, covers them.
func (s *Server) watch(m *module) {
	for {
		if _, err := m.fl.waitForSlotEvent(0); err != nil {
			return
		}
		s.send(&wire.Response{Event: wire.EventSlot, Module: m.path})
	}
}

// slotLock returns the lock that serializes access to one slot.
func (m *module) slotLock(slot uint) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.slots[slot]
	if !ok {
		l = new(sync.Mutex)
		m.slots[slot] = l
	}
	return l
}

// modulesInOrder returns the loaded modules in load order.
func (s *Server) modulesInOrder() []*module {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*module, 0, len(s.order))
	for _, p := range s.order {
		out = append(out, s.modules[p])
	}
	return out
}
