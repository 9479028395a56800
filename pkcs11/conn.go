package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pkcs11/wire"
	"golang.org/x/sys/unix"
)

// helperConn is one running helper process and the daemon's end of its
// socket. Requests are multiplexed by ID; a reader goroutine delivers the
// answers and the slot events.
type helperConn struct {
	cmd     *exec.Cmd
	sock    *os.File
	timeout time.Duration

	writeMu sync.Mutex // serializes frames on sock

	mu      sync.Mutex
	pending map[uint64]chan *wire.Response
	nextID  uint64
	err     error // why the helper is gone, once it is

	dead   chan struct{} // closed when the helper is gone
	events chan struct{} // a slot event arrived (coalesced)
}

// startHelper starts the helper binary with one end of a fresh socketpair on
// fd 3.
func startHelper(path string, env []string, stderr io.Writer, timeout time.Duration) (*helperConn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	parent, child := os.NewFile(uintptr(fds[0]), "pkcs11-helper"), os.NewFile(uintptr(fds[1]), "pkcs11-helper-child")
	defer child.Close()
	cmd := exec.Command(path)
	cmd.ExtraFiles = []*os.File{child}
	cmd.Env = env
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		parent.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	c := &helperConn{
		cmd: cmd, sock: parent, timeout: timeout,
		pending: map[uint64]chan *wire.Response{},
		dead:    make(chan struct{}), events: make(chan struct{}, 1),
	}
	go c.readLoop()
	go func() {
		err := cmd.Wait()
		c.fail(fmt.Errorf("helper exited: %v", err))
	}()
	return c, nil
}

// readLoop delivers responses until the socket fails.
func (c *helperConn) readLoop() {
	for {
		resp, err := wire.ReadResponse(c.sock)
		if err != nil {
			c.fail(fmt.Errorf("helper connection: %w", err))
			c.kill()
			return
		}
		if resp.Event != "" {
			select {
			case c.events <- struct{}{}:
			default:
			}
			continue
		}
		c.mu.Lock()
		ch := c.pending[resp.ID]
		delete(c.pending, resp.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- resp
		}
	}
}

// fail records why the helper is gone and fails every pending request.
func (c *helperConn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.sock.Close()
	close(c.dead)
}

// kill ends the helper process; the Wait goroutine then records it gone.
func (c *helperConn) kill() {
	_ = c.cmd.Process.Kill()
}

// pid is the helper's process id.
func (c *helperConn) pid() int { return c.cmd.Process.Pid }

// call sends req and waits for its answer. A helper that is gone or does not
// answer within the timeout yields hwerr.ErrUnavailable (and a hung helper
// is killed); a ctx that ends first yields hwerr.ErrCanceled and leaves the
// helper alone. An answer that carries an error returns it, in its hwerr
// class.
func (c *helperConn) call(ctx context.Context, req *wire.Request) (*wire.Response, error) {
	ch, err := c.register(req)
	if err != nil {
		return nil, err
	}
	if err := c.write(req); err != nil {
		c.kill()
		return nil, fmt.Errorf("%s: %v: %w", req.Op, err, hwerr.ErrUnavailable)
	}
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s: PKCS#11 helper died: %w", req.Op, hwerr.ErrUnavailable)
		}
		if resp.Error != nil {
			return nil, resp.Error.Err()
		}
		return resp, nil
	case <-ctx.Done():
		c.unregister(req.ID)
		return nil, fmt.Errorf("%s: %w: %w", req.Op, hwerr.ErrCanceled, ctx.Err())
	case <-timer.C:
		c.kill()
		return nil, fmt.Errorf("%s: PKCS#11 helper did not answer within %v and was restarted: %w", req.Op, c.timeout, hwerr.ErrUnavailable)
	}
}

// register gives req a fresh ID and a channel for its answer.
func (c *helperConn) register(req *wire.Request) (chan *wire.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, fmt.Errorf("%s: %v: %w", req.Op, c.err, hwerr.ErrUnavailable)
	}
	c.nextID++
	req.ID = c.nextID
	ch := make(chan *wire.Response, 1)
	c.pending[req.ID] = ch
	return ch, nil
}

func (c *helperConn) unregister(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, id)
}

// write sends one request frame.
func (c *helperConn) write(req *wire.Request) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return wire.WriteRequest(c.sock, req)
}

// errHelperGone is the reason given when no helper is running.
var errHelperGone = errors.New("PKCS#11 helper is not running")
