package client

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// blockingDialer dials socket with blocking I/O, as dialSocket does outside
// race-detector builds, and counts its connections.
func blockingDialer(socket string, n *atomic.Int32) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		n.Add(1)
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", socket)
		if err != nil {
			return nil, err
		}
		bc := newBlockingConn(c)
		if _, ok := bc.(*blockingConn); !ok {
			return nil, errors.New("not a blocking connection")
		}
		return bc, nil
	}
}

// TestBlockingConn: over blocking connections, answers and errors arrive and
// the connection is kept; a request to a daemon that does not answer ends
// with its context; closing a connection ends a read blocked on it.
func TestBlockingConn(t *testing.T) {
	c, dials := overOneConnection(t, blockingDialer, 3)
	c.Close()

	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	silent := rawServer(t, func(nc net.Conn) {
		defer nc.Close()
		<-release
	})
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := NewDialer(silent, blockingDialer(silent, dials)).Status(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Status on a silent daemon = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancelled request took %v", d)
	}

	conn, err := blockingDialer(silent, dials)(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	// A deadline ahead ends a read that gets nothing; clearing it lets the
	// next read wait again (here: until Close).
	if err := conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline = %v, want ErrDeadlineExceeded", err)
	}
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 16))
		read <- err
	}()
	time.Sleep(50 * time.Millisecond) // lets the read block; Close must end it either way
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-read:
		if err == nil || (!errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed)) {
			t.Fatalf("read after Close = %v, want EOF or closed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a blocked read")
	}
	if _, err := conn.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close = %v, want net.ErrClosed", err)
	}
}
