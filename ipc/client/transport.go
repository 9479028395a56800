package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// The client speaks HTTP/1.1 itself over kept-alive connections instead of
// going through net/http's Transport, whose per-request machinery (a reader
// and a writer goroutine per connection, channels, request cloning) cost
// more than the daemon's answer to a status request. A request is written in
// one write and the answer parsed with http.ReadResponse; the daemon sees
// ordinary HTTP, the same as from curl.

const (
	// maxIdleConns is how many connections a Client keeps open between
	// requests.
	maxIdleConns = 4
	// maxIdleTime is how long an unused connection is kept: well under the
	// daemon's idle timeout, so that a kept connection is still open.
	maxIdleTime = 20 * time.Second
)

// conn is one connection to the daemon with its read buffer and the buffer
// requests are written from.
type conn struct {
	net.Conn
	br        *bufio.Reader
	wbuf      []byte
	idleSince time.Time
}

// dialSocket returns a dial function for a Unix socket path. Its
// connections do blocking I/O (blockingConn).
func dialSocket(path string) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return c, err
		}
		return newBlockingConn(c), nil
	}
}

// get returns a kept connection (reused true) or a new one.
func (c *Client) get(ctx context.Context) (cn *conn, reused bool, err error) {
	c.mu.Lock()
	for len(c.idle) > 0 {
		cn = c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		if time.Since(cn.idleSince) < maxIdleTime {
			c.mu.Unlock()
			return cn, true, nil
		}
		cn.Close()
	}
	c.mu.Unlock()
	nc, err := c.dial(ctx)
	if err != nil {
		return nil, false, err
	}
	return &conn{Conn: nc, br: bufio.NewReaderSize(nc, 4096)}, false, nil
}

// put keeps a connection whose last answer was read whole for the next
// request, or closes it when enough are kept.
func (c *Client) put(cn *conn) {
	_ = cn.SetDeadline(time.Time{})
	cn.idleSince = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle) >= maxIdleConns {
		cn.Close()
		return
	}
	c.idle = append(c.idle, cn)
}

// longAgo is a deadline in the past: it makes a blocked read or write return.
var longAgo = time.Unix(1, 0)

// watch interrupts the connection's I/O when ctx ends (after ctx.Err is
// set, so the caller reports ctx's error); stop reports whether ctx had not
// interrupted it.
func (cn *conn) watch(ctx context.Context) (stop func() bool) {
	if ctx.Done() == nil {
		return neverInterrupted // a context that never ends (Background): nothing to watch
	}
	return context.AfterFunc(ctx, func() { _ = cn.SetDeadline(longAgo) })
}

// neverInterrupted is the stop of a context that cannot end.
func neverInterrupted() bool { return true }

// writeRequest writes the request line, headers and body in one write and
// clears the copy of the body (it may hold a PIN) from the write buffer.
func (cn *conn) writeRequest(method, path string, body []byte) error {
	b := append(cn.wbuf[:0], method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: hwauthd\r\n"...)
	if body != nil {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	_, err := cn.Write(b)
	clear(b)
	cn.wbuf = b[:0]
	return err
}

// roundTrip sends one request and reads the head of its answer. A kept
// connection that fails while the request is written (the daemon closed it)
// is replaced once: nothing reached the daemon. Once the request is written,
// only a GET, which changes nothing, is sent again (once, when a kept
// connection ends without an answer); anything else is not, so a PIN is
// never sent twice.
func (c *Client) roundTrip(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		cn, reused, err := c.get(ctx)
		if err != nil {
			return nil, err
		}
		stop := cn.watch(ctx)
		if err := cn.writeRequest(method, path, body); err != nil {
			stop()
			cn.Close()
			if reused && attempt == 0 && ctx.Err() == nil {
				continue
			}
			return nil, err
		}
		resp, err := http.ReadResponse(cn.br, nil)
		if err != nil {
			stop()
			cn.Close()
			if reused && attempt == 0 && method == http.MethodGet && ctx.Err() == nil && closedUnanswered(err) {
				continue
			}
			return nil, err
		}
		resp.Body = &bodyReader{rc: resp.Body, cn: cn, c: c, stop: stop, keep: !resp.Close}
		return resp, nil
	}
}

// closedUnanswered tells whether a connection ended before any answer.
func closedUnanswered(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// bodyReader is an answer's body: once read to its end and closed, its
// connection goes back to the client for the next request; closed earlier
// (an event stream), the connection is closed.
type bodyReader struct {
	rc   io.ReadCloser
	cn   *conn
	c    *Client
	stop func() bool
	keep bool
	eof  bool
	done bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	}
	return n, err
}

func (b *bodyReader) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof {
		// Closed before its end (an event stream): net/http's body would
		// read on to the end first, which for a stream is when the daemon
		// stops. The connection goes at once instead.
		b.stop()
		b.cn.Close()
		b.rc.Close()
		return nil
	}
	err := b.rc.Close()
	if b.stop() && b.keep && b.eof && err == nil {
		b.c.put(b.cn)
		return nil
	}
	b.cn.Close()
	return err
}

// Close closes the connections the client keeps. The client stays usable.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, cn := range idle {
		cn.Close()
	}
	return nil
}

// transportError turns a failure to reach or talk to the daemon into ctx's
// error when ctx ended, and into an *UnreachableError otherwise.
func (c *Client) transportError(ctx context.Context, method, path string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", method, path, ctx.Err())
	}
	return &UnreachableError{Socket: c.socket, Err: err}
}
