package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hwauthd/hwauthd/ipc"
)

// table returns a tab writer for aligned columns.
func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// statusCmd is `hwauthctl status`.
func statusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the daemon's version, uptime and backends",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.client().Status(cmd.Context())
			if err != nil {
				return err
			}
			return a.output(st, func() error { return printStatus(a.stdout, st) })
		},
	}
}

// printStatus writes the status for people.
func printStatus(w io.Writer, st *ipc.Status) error {
	fmt.Fprintf(w, "hwauthd %s, up %s\n", st.Version, time.Duration(st.UptimeSeconds)*time.Second)
	tw := table(w)
	fmt.Fprintln(tw, "BACKEND\tSTATE\tDETAIL")
	names := make([]string, 0, len(st.Backends))
	for n := range st.Backends {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		b := st.Backends[n]
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n, b.State, backendDetail(n, b))
	}
	return tw.Flush()
}

// backendDetail summarises the numbers and detail of backend name.
func backendDetail(name string, b ipc.BackendStatus) string {
	var parts []string
	if b.Readers != nil {
		parts = append(parts, plural(*b.Readers, "reader"))
	}
	if b.Devices != nil {
		what := "device"
		if name == "tpm" {
			what = "virtual card" // the TPM itself is one device
		}
		parts = append(parts, plural(*b.Devices, what))
	}
	if b.Manufacturer != "" {
		parts = append(parts, "manufacturer "+b.Manufacturer)
	}
	if b.Detail != "" {
		parts = append(parts, b.Detail)
	}
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += ", "
		}
		out += p
	}
	return out
}

// plural words a count.
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// readersCmd is `hwauthctl readers`.
func readersCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "readers",
		Short: "List smart card readers and whether a card is in them",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			rs, err := a.client().Readers(cmd.Context())
			if err != nil {
				return err
			}
			return a.output(ipc.ReadersResponse{Readers: rs}, func() error {
				tw := table(a.stdout)
				fmt.Fprintln(tw, "READER\tCARD\tATR")
				for _, r := range rs {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, yesNo(r.CardPresent), r.ATR)
				}
				return tw.Flush()
			})
		},
	}
}

// yesNo words a boolean.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
