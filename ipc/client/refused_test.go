package client

import (
	"bytes"
	"testing"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/apitest"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// TestRequestAfterRefusedBody: after the daemon refused a body it did not
// read to its end (too large) and ended that connection, the client's next
// request, a POST that is never sent twice, goes out on a fresh connection
// and succeeds: the refusal said Connection: close.
func TestRequestAfterRefusedBody(t *testing.T) {
	tries := 3
	sock := apitest.Start(t, server.Config{MaxBodyBytes: 64}, pinRoutes(&tries))
	c := New(sock)
	for range 3 {
		if _, err := c.VerifyPIN(ctx(t), "piv/1", bytes.Repeat([]byte("1"), 4096)); !IsCode(err, ipc.CodeTooLarge) {
			t.Fatalf("a PIN of 4 KiB: %v, want too_large", err)
		}
		if r, err := c.VerifyPIN(ctx(t), "piv/1", []byte(`12"3456`)); err != nil || !r.Verified {
			t.Fatalf("the request after a refused body: %+v %v", r, err)
		}
	}
}
