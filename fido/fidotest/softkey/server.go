package softkey

import (
	"context"
	"errors"
	"net"
	"sync"
)

// Server serves one Key on a SOCK_SEQPACKET Unix socket: each connection is
// one open handle and each packet one 64-byte CTAPHID report. Closing the
// server is unplugging the key: the listener and every connection close.
type Server struct {
	k *Key
	l *net.UnixListener

	mu     sync.Mutex
	conns  map[*net.UnixConn]bool
	closed bool
	wg     sync.WaitGroup
}

// Listen creates the socket at path and starts serving k on it.
func Listen(path string, k *Key) (*Server, error) {
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, err
	}
	s := &Server{k: k, l: l, conns: map[*net.UnixConn]bool{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// ServeSeqpacket serves k on l until ctx ends, then closes l and every
// connection.
func ServeSeqpacket(ctx context.Context, l *net.UnixListener, k *Key) error {
	s := &Server{k: k, l: l, conns: map[*net.UnixConn]bool{}}
	s.wg.Add(1)
	go s.acceptLoop()
	<-ctx.Done()
	s.Close()
	return ctx.Err()
}

// Path returns the socket path.
func (s *Server) Path() string { return s.l.Addr().String() }

// Close unplugs the key: it stops accepting, closes every connection and
// waits for their handlers.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.l.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.l.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn moves reports between one connection and a Conn.
func (s *Server) serveConn(uc *net.UnixConn) {
	defer s.wg.Done()
	hc := s.k.NewConn(func(r [ReportSize]byte) error {
		_, err := uc.Write(r[:])
		return err
	})
	defer func() {
		uc.Close()
		hc.Close()
		s.mu.Lock()
		delete(s.conns, uc)
		s.mu.Unlock()
	}()
	buf := make([]byte, 256)
	for {
		n, err := uc.Read(buf)
		if err != nil || n == 0 {
			return
		}
		var r [ReportSize]byte
		copy(r[:], buf[:min(n, ReportSize)])
		hc.HandleReport(r)
	}
}
