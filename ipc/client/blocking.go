package client

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// blockingConn is a connection to the daemon read and written with
// blocking system calls on the calling thread, outside Go's netpoller. It
// reads and writes through package syscall, as the netpoller's connections
// do, so that the race detector sees a request's write happen before its
// answer's read when a test serves the client in its own process
// (golang.org/x/sys/unix's Read and Write synchronize on a variable of
// their own). A
// request waits for its answer in read(2), and the kernel wakes that thread
// when the answer arrives; through the netpoller the goroutine was parked
// and another thread woken to run it again, which on a loaded machine
// measured a fifth of a status request's time. The connection is dialed
// through the netpoller (so the context bounds the dial) and then handed
// over.
//
// Deadlines: a deadline in the past (how the client ends I/O when a
// request's context ends) shuts the socket down, which wakes a blocked read
// or write at once; a later deadline sets SO_RCVTIMEO/SO_SNDTIMEO; the zero
// time clears them.
type blockingConn struct {
	fd     int
	local  net.Addr
	remote net.Addr

	mu      sync.Mutex
	busy    int  // system calls in progress on fd
	closing bool // Close was called; fd is closed when busy drops to 0
	// timeouts are the options (SO_RCVTIMEO, SO_SNDTIMEO) set to a
	// timeout, so that clearing one that is not set costs no system call
	// (the client clears the deadlines after every answer).
	timeouts map[int]bool
}

// newBlockingConn takes over a dialed Unix socket connection; on failure it
// returns the connection as it was.
func newBlockingConn(c net.Conn) net.Conn {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return c
	}
	f, err := uc.File() // a duplicate of the descriptor, close-on-exec
	if err != nil {
		return c
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return c
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return c
	}
	bc := &blockingConn{fd: fd, local: uc.LocalAddr(), remote: uc.RemoteAddr()}
	uc.Close() // leaves the netpoller; the duplicate stays open
	return bc
}

// acquire marks a system call on fd in progress; false once closed.
func (c *blockingConn) acquire() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.busy++
	return true
}

// release ends a system call, closing fd if Close came meanwhile.
func (c *blockingConn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy--; c.busy == 0 && c.closing {
		unix.Close(c.fd)
	}
}

// Read reads from the socket, blocking the calling thread.
func (c *blockingConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !c.acquire() {
		return 0, c.opError("read", net.ErrClosed)
	}
	defer c.release()
	for {
		n, err := syscall.Read(c.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN: // SO_RCVTIMEO passed
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case err != nil:
			return 0, c.opError("read", os.NewSyscallError("read", err))
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes all of p, blocking the calling thread.
func (c *blockingConn) Write(p []byte) (int, error) {
	if !c.acquire() {
		return 0, c.opError("write", net.ErrClosed)
	}
	defer c.release()
	written := 0
	for written < len(p) {
		n, err := syscall.Write(c.fd, p[written:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return written, c.opError("write", os.ErrDeadlineExceeded)
		case err != nil:
			return written, c.opError("write", os.NewSyscallError("write", err))
		}
		written += n
	}
	return written, nil
}

// Close shuts the socket down, which ends a read or write blocked in
// another goroutine, and closes it once no system call uses it.
func (c *blockingConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return c.opError("close", net.ErrClosed)
	}
	c.closing = true
	_ = unix.Shutdown(c.fd, unix.SHUT_RDWR)
	if c.busy == 0 {
		return unix.Close(c.fd)
	}
	return nil
}

// LocalAddr returns the local address.
func (c *blockingConn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the socket's address.
func (c *blockingConn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both deadlines.
func (c *blockingConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets SO_RCVTIMEO, or shuts the socket down for a time
// that has passed.
func (c *blockingConn) SetReadDeadline(t time.Time) error {
	return c.setTimeout(unix.SO_RCVTIMEO, unix.SHUT_RD, t)
}

// SetWriteDeadline sets SO_SNDTIMEO, or shuts the socket down for a time
// that has passed.
func (c *blockingConn) SetWriteDeadline(t time.Time) error {
	return c.setTimeout(unix.SO_SNDTIMEO, unix.SHUT_WR, t)
}

func (c *blockingConn) setTimeout(opt, how int, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return c.opError("set deadline", net.ErrClosed)
	}
	var d time.Duration
	if !t.IsZero() {
		if d = time.Until(t); d <= 0 {
			return unix.Shutdown(c.fd, how)
		}
	} else if !c.timeouts[opt] {
		return nil
	}
	tv := unix.NsecToTimeval(d.Nanoseconds())
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, opt, &tv); err != nil {
		return err
	}
	if c.timeouts == nil {
		c.timeouts = map[int]bool{}
	}
	c.timeouts[opt] = d > 0
	return nil
}

func (c *blockingConn) opError(op string, err error) error {
	if errors.Is(err, io.EOF) {
		return err
	}
	return &net.OpError{Op: op, Net: "unix", Source: c.local, Addr: c.remote, Err: err}
}
