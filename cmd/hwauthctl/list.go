package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/hwauthd/hwauthd/ipc"
)

// listCmd is `hwauthctl list`.
func listCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List present authenticators (smart cards, virtual smart cards, security keys)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			as, err := a.client().Authenticators(cmd.Context())
			if err != nil {
				return err
			}
			return a.output(ipc.AuthenticatorsResponse{Authenticators: as}, func() error {
				if len(as) == 0 {
					fmt.Fprintln(a.stdout, "No authenticator is present: insert a card or plug in a security key.")
					return nil
				}
				tw := table(a.stdout)
				fmt.Fprintln(tw, "ID\tKIND\tREADER\tLABEL\tPIN")
				for _, au := range as {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", au.ID, au.Kind, au.Reader, au.Label, pinState(au.PIN))
				}
				return tw.Flush()
			})
		},
	}
}

// pinState words a PIN state for the table.
func pinState(p ipc.PINState) string {
	n, known := p.RetriesLeft.Left()
	switch {
	case p.Blocked:
		return "blocked"
	case !known && p.Verified:
		return "verified"
	case !known:
		return "?"
	case p.Verified:
		return triesLeft(n) + ", verified"
	}
	return triesLeft(n)
}

// showCmd is `hwauthctl show ID`.
func showCmd(a *app) *cobra.Command {
	var pem bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one authenticator with its keys and certificates",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			au, err := a.client().Authenticator(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.output(au, func() error { return printAuthenticator(a.stdout, au, pem) })
		},
	}
	cmd.Flags().BoolVar(&pem, "pem", false, "also print public keys and certificates (PEM)")
	return cmd
}

// printAuthenticator writes one authenticator for people.
func printAuthenticator(w io.Writer, au *ipc.Authenticator, pem bool) error {
	tw := table(w)
	rows := [][2]string{{"ID", au.ID}, {"Kind", au.Kind}, {"Backend", au.Backend}, {"Reader", au.Reader},
		{"Label", au.Label}, {"Serial", au.Serial}, {"PIN", pinState(au.PIN)}}
	for _, r := range rows {
		if r[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = table(w)
	fmt.Fprintln(tw, "KEY\tALGORITHM\tCERTIFICATE")
	for _, k := range au.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.ID, k.Algorithm, yesNo(k.Certificate != ""))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if pem {
		for _, k := range au.Keys {
			fmt.Fprintf(w, "\nKey %s public key:\n%s", k.ID, k.PublicKey)
			if k.Certificate != "" {
				fmt.Fprintf(w, "Key %s certificate:\n%s", k.ID, k.Certificate)
			}
		}
	}
	return nil
}
