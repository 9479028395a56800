package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hwauthd/hwauthd/ipc"
)

// watchCmd is `hwauthctl watch [--since N]`.
func watchCmd(a *app) *cobra.Command {
	var since uint64
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print events (readers, cards, keys, sessions) as they happen",
		Long:  "watch prints the present state first, then events as they happen, until interrupted.\nWith --since N it resumes after event N instead of printing the state.",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.watch(cmd.Context(), since)
		},
	}
	cmd.Flags().Uint64Var(&since, "since", 0, "resume after this event sequence number")
	return cmd
}

// watch streams events to stdout until ctx ends or the daemon ends the stream.
func (a *app) watch(ctx context.Context, since uint64) error {
	st, err := a.client().Events(ctx, since)
	if err != nil {
		return err
	}
	defer st.Close()
	for {
		e, err := st.Next()
		switch {
		case errors.Is(err, context.Canceled):
			return nil
		case errors.Is(err, io.EOF):
			return errors.New("hwauthd ended the event stream")
		case err != nil:
			return err
		}
		if err := a.printEvent(e); err != nil {
			return err
		}
		if e.Type == ipc.EventDropped {
			return fmt.Errorf("hwauthd dropped this watcher: %s", e.Reason)
		}
	}
}

// printEvent writes one event: a JSON line with --json, else one text line.
func (a *app) printEvent(e ipc.Event) error {
	if a.json {
		return jsonLine(a.stdout, e)
	}
	_, err := fmt.Fprintln(a.stdout, eventLine(e))
	return err
}

// eventLine formats an event for people.
func eventLine(e ipc.Event) string {
	parts := []string{e.Time.Local().Format(time.TimeOnly), fmt.Sprintf("#%d", e.Seq), e.Type}
	for _, kv := range [][2]string{{"reader", e.Reader}, {"authenticator", e.Authenticator}, {"user", e.User}, {"session", e.Session}, {"reason", e.Reason}} {
		if kv[1] != "" {
			parts = append(parts, fmt.Sprintf("%s=%q", kv[0], kv[1]))
		}
	}
	return strings.Join(parts, " ")
}
