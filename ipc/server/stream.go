package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/hwauthd/hwauthd/ipc"
)

// StreamJSONLines answers 200 with a stream of JSON objects, one per line,
// flushing each. next blocks until the next value is ready; it returns
// io.EOF to end the stream. The stream also ends when the request's context
// does (client gone, server shutting down). Errors after the response
// started can only be logged, so next should send its own final line (e.g.
// a "dropped" event) before failing. A peer that has Limits.StreamsPerUser
// streams open already is answered busy.
func StreamJSONLines(w http.ResponseWriter, r *http.Request, next func(ctx context.Context) (any, error)) error {
	ctx := r.Context()
	if env := envFrom(r); env.lim != nil {
		p, _ := PeerFromContext(ctx)
		done, ok := env.lim.openStream(p)
		if !ok {
			return ipc.Errorf(ipc.CodeBusy, "you have %d streams open already; close one and try again", env.lim.limits.StreamsPerUser)
		}
		defer done()
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("stream: flush: %w", err)
	}
	for {
		v, err := next(ctx)
		if errors.Is(err, io.EOF) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stream: %w", err)
		}
		if err := writeLine(w, rc, v); err != nil {
			return err
		}
	}
}

// writeLine writes one JSON line and flushes it (under Config.WriteTimeout,
// as every write of an answer).
func writeLine(w http.ResponseWriter, rc *http.ResponseController, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("stream: encode: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("stream: write: %w", err)
	}
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("stream: flush: %w", err)
	}
	return nil
}
