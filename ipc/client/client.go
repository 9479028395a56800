// Package client is the Go client of hwauthd's socket API, used by
// hwauthctl, the PAM helper and sign-in clients. API errors come back as
// *ipc.Error (use errors.As, or errors.Is with the hwerr classes); a daemon
// that cannot be reached gives an *UnreachableError.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"

	"github.com/hwauthd/hwauthd/ipc"
)

// DefaultSocketPath is where hwauthd listens unless told otherwise.
const DefaultSocketPath = "/run/hwauthd/hwauthd.sock"

// SocketEnv is the environment variable that overrides DefaultSocketPath.
const SocketEnv = "HWAUTHD_SOCKET"

// DefaultSocket returns $HWAUTHD_SOCKET, or DefaultSocketPath when unset.
func DefaultSocket() string {
	if p := os.Getenv(SocketEnv); p != "" {
		return p
	}
	return DefaultSocketPath
}

// Client talks to hwauthd over its Unix socket. It is safe for concurrent
// use.
type Client struct {
	socket string
	http   *http.Client
}

// New returns a client for the daemon at socketPath ("" means
// DefaultSocket()). It does not connect until the first call.
func New(socketPath string) *Client {
	if socketPath == "" {
		socketPath = DefaultSocket()
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socketPath)
	}
	return &Client{socket: socketPath, http: &http.Client{Transport: &http.Transport{DialContext: dial}}}
}

// SocketPath returns the socket the client talks to.
func (c *Client) SocketPath() string { return c.socket }

// UnreachableError means the daemon could not be reached on its socket.
type UnreachableError struct {
	Socket string
	Err    error
}

// Error says where the daemon was expected and suggests checking it runs.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach hwauthd at %s: %v: is it running? (systemctl status hwauthd.socket)", e.Socket, e.Err)
}

// Unwrap returns the transport error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// call sends a request with an optional JSON body and decodes a JSON answer
// into out (nil to ignore it).
func (c *Client) call(ctx context.Context, method, path string, body []byte, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// send performs the request and turns error statuses into *ipc.Error. The
// caller closes the body of a successful response.
func (c *Client) send(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://hwauthd"+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &UnreachableError{Socket: c.socket, Err: err}
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// decodeError reads the error envelope of a failed response.
func decodeError(resp *http.Response) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("hwauthd answered %s; reading the error: %w", resp.Status, err)
	}
	var e ipc.Error
	if err := json.Unmarshal(b, &e); err != nil || e.Code == "" {
		return fmt.Errorf("hwauthd answered %s without an error envelope", resp.Status)
	}
	return &e
}

// jsonBody marshals a request without secrets.
func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}

// callSecret sends a request holding secrets (encoded by ipc.EncodeRequest)
// and zeroes the encoded body afterwards.
func (c *Client) callSecret(ctx context.Context, method, path string, req, out any) error {
	body, err := ipc.EncodeRequest(req)
	if err != nil {
		return err
	}
	defer clear(body)
	return c.call(ctx, method, path, body, out)
}

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }

// IsCode reports whether err is an API error with the given code.
func IsCode(err error, code ipc.Code) bool {
	var e *ipc.Error
	return errors.As(err, &e) && e.Code == code
}
