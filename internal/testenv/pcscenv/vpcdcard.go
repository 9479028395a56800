package pcscenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/ebfe/scard"
	"golang.org/x/sys/unix"
)

// pcscd learns of a vpcd card only by polling the reader every 400 ms: vpcd
// answers "present" while it has a card connection that gives an ATR. When
// something other than a poll finds the old connection closed (a reset that
// pcscd makes for a client that died, a power-off), vpcd drops it and takes
// the next connection at the next poll; pcscd, which never polled an empty
// reader in between, then takes the new card for the old one, and a card
// that the failed reset marked absent stays invisible until it is removed.
// So a card's connection waits, when it closes, until pcscd has seen the card
// go, and a new card is dialed only into a reader that pcscd shows empty.

// cardGoneTimeout bounds how long closing a card's connection waits for
// pcscd to see the card go; it sees it at its next poll.
const cardGoneTimeout = 5 * time.Second

// readerEmptyTimeout bounds DialReader's wait for an empty reader when ctx
// has no earlier deadline.
const readerEmptyTimeout = 30 * time.Second

// DialReader connects to vpcd reader i (0 or 1) inside pcscd's network
// namespace: the card side of vpcd's protocol. Closing the connection removes
// the card and returns once pcscd has seen it go. DialReader waits until
// pcscd shows the reader empty, so that pcscd sees every card it dials as an
// insertion. The returned connection works from any goroutine.
func (p *PCSC) DialReader(ctx context.Context, i int) (net.Conn, error) {
	if i < 0 || i > 1 {
		return nil, fmt.Errorf("dial reader %d: only readers 0 and 1 exist", i)
	}
	waitCtx, cancel := context.WithTimeout(ctx, readerEmptyTimeout)
	defer cancel()
	_, err := watchReader(waitCtx, p.ReaderName(i), func(s scard.ReaderState) bool {
		return s.EventState&scard.StateEmpty != 0
	})
	if err != nil {
		return nil, fmt.Errorf("dial vpcd reader %d: waiting for pcscd to show it empty: %w", i, err)
	}
	nsPath := p.netnsPath()
	type result struct {
		c   net.Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		// The thread enters the namespace and is never unlocked, so it dies
		// with this goroutine and no other goroutine runs in the namespace.
		runtime.LockOSThread()
		c, err := dialInNetns(ctx, nsPath, p.VPCDAddr(i))
		res <- result{c, err}
	}()
	r := <-res
	if r.err != nil {
		return nil, fmt.Errorf("dial vpcd reader %d: %w", i, r.err)
	}
	return &cardConn{TCPConn: r.c.(*net.TCPConn), reader: p.ReaderName(i)}, nil
}

func dialInNetns(ctx context.Context, nsPath, addr string) (net.Conn, error) {
	fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", nsPath, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("setns: %w", err)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// cardConn is a card's connection to a vpcd reader.
type cardConn struct {
	*net.TCPConn
	reader string
	once   sync.Once
	err    error
}

// Close closes the connection. If pcscd showed a card in the reader, it then
// waits (at most cardGoneTimeout) for pcscd's next event on the reader to
// show it empty: the poll that saw the card go. A reset that failed on the
// closed connection empties the reader too, but without a new event.
func (c *cardConn) Close() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cardGoneTimeout)
		defer cancel()
		before, err := watchReader(ctx, c.reader, func(scard.ReaderState) bool { return true })
		c.err = c.TCPConn.Close()
		if err != nil || before.EventState&scard.StatePresent == 0 {
			return
		}
		_, _ = watchReader(ctx, c.reader, func(s scard.ReaderState) bool {
			return s.EventState&scard.StateEmpty != 0 && eventCount(s) != eventCount(before)
		})
	})
	return c.err
}

// eventCount returns pcscd's count of card events in the reader, which it
// keeps in the upper 16 bits of the event state.
func eventCount(s scard.ReaderState) uint32 { return uint32(s.EventState) >> 16 }

// watchReader follows the private pcscd's state of reader until done accepts
// it, and returns that state; it fails when ctx ends first or pcscd cannot be
// reached.
func watchReader(ctx context.Context, reader string, done func(scard.ReaderState) bool) (scard.ReaderState, error) {
	sc, err := scard.EstablishContext()
	if err != nil {
		return scard.ReaderState{}, fmt.Errorf("reach pcscd: %w", err)
	}
	defer sc.Release()
	st := []scard.ReaderState{{Reader: reader, CurrentState: scard.StateUnaware}}
	for {
		err := sc.GetStatusChange(st, 250*time.Millisecond)
		switch {
		case errors.Is(err, scard.ErrTimeout):
		case err != nil:
			return st[0], fmt.Errorf("state of %s: %w", reader, err)
		case done(st[0]):
			return st[0], nil
		default:
			st[0].CurrentState = st[0].EventState &^ scard.StateChanged
		}
		if ctx.Err() != nil {
			return st[0], fmt.Errorf("state of %s is %#x: %w", reader, uint32(st[0].EventState), ctx.Err())
		}
	}
}
