package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/hwauthd/hwauthd/ipc"
)

// maxEventLine bounds one line of the event stream.
const maxEventLine = 1 << 20

// EventStream reads GET /v1/events. It is not safe for concurrent use.
type EventStream struct {
	resp *http.Response
	sc   *bufio.Scanner
	ctx  context.Context
}

// Events opens the event stream. With since == 0 it starts with a snapshot of
// the present state, ended by a snapshot-done event; with since > 0 it
// resumes after that sequence number (an *ipc.Error events_expired means
// start again with 0). The stream ends when ctx does.
func (c *Client) Events(ctx context.Context, since uint64) (*EventStream, error) {
	path := "/v1/events"
	if since > 0 {
		path += "?since=" + strconv.FormatUint(since, 10)
	}
	resp, err := c.send(ctx, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), maxEventLine)
	return &EventStream{resp: resp, sc: sc, ctx: ctx}, nil
}

// Next returns the next event. It returns io.EOF when the daemon ended the
// stream (after a dropped event, or on shutdown) and ctx.Err() when the
// context ended.
func (s *EventStream) Next() (ipc.Event, error) {
	if !s.sc.Scan() {
		if s.ctx.Err() != nil {
			return ipc.Event{}, s.ctx.Err()
		}
		if err := s.sc.Err(); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return ipc.Event{}, fmt.Errorf("read events: %w", err)
		}
		return ipc.Event{}, io.EOF
	}
	var e ipc.Event
	if err := json.Unmarshal(s.sc.Bytes(), &e); err != nil {
		return ipc.Event{}, fmt.Errorf("decode event: %w", err)
	}
	return e, nil
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.resp.Body.Close() }
