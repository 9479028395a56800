package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hwauthd/hwauthd/ipc"
)

// identityPrefixes are the kinds of identity a link may name.
var identityPrefixes = []string{ipc.IdentityUPN, ipc.IdentityEmail, ipc.IdentityCN, ipc.IdentitySubject}

// checkIdentity refuses an identity without a known prefix or without a
// value after it.
func checkIdentity(id string) error {
	for _, p := range identityPrefixes {
		if v, ok := strings.CutPrefix(id, p); ok && strings.TrimSpace(v) != "" {
			return nil
		}
	}
	return usageError{fmt.Errorf("identity %q must be upn:NAME, email:ADDRESS, cn:NAME or subject:DN", id)}
}

// linkCmd is `hwauthctl link --user U IDENTITY`.
func linkCmd(a *app) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "link --user USER IDENTITY",
		Short: "Link a certificate identity (upn:, email:, cn:, subject:) to a local account (admin)",
		Long: "link maps an identity found in a card's certificate to a local account, so that the card\n" +
			"may sign in as that account; one account may link several identities. IDENTITY is\n" +
			"upn:alice@example.com, email:alice@example.org, cn:Alice Smith or subject:CN=Alice,O=Example.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkIdentity(args[0]); err != nil {
				return err
			}
			l, err := a.client().Link(cmd.Context(), name, args[0])
			if err != nil {
				return err
			}
			return a.output(l, func() error {
				_, err := fmt.Fprintf(a.stdout, "Linked %s to %s.\n", l.Identity, name)
				return err
			})
		},
	}
	requiredUserFlag(cmd, &name)
	return cmd
}

// requiredUserFlag adds a mandatory --user to cmd.
func requiredUserFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVar(name, "user", "", "local account (required)")
	_ = cmd.MarkFlagRequired("user")
}

// unlinkCmd is `hwauthctl unlink [--user U] IDENTITY`.
func unlinkCmd(a *app) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "unlink [--user USER] IDENTITY",
		Short: "Remove the link of a certificate identity to an account (yours when self-service allows; admin)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := accountOrSelf(name)
			if err != nil {
				return err
			}
			if err := a.client().Unlink(cmd.Context(), u, args[0]); err != nil {
				return err
			}
			if a.json {
				return nil
			}
			_, err = fmt.Fprintf(a.stdout, "Unlinked %s from %s.\n", args[0], u)
			return err
		},
	}
	userFlag(cmd, &name)
	return cmd
}

// linksCmd is `hwauthctl links [--user U]`.
func linksCmd(a *app) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "links [--user USER]",
		Short: "List the certificate identities linked to an account (yours; any for admins)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := accountOrSelf(name)
			if err != nil {
				return err
			}
			ls, err := a.client().Links(cmd.Context(), u)
			if err != nil {
				return err
			}
			return a.output(ls, func() error {
				if !ls.Linking {
					fmt.Fprintln(a.stdout, "Account linking is off (no \"link\" rule in signin.mapping): these links are not used to sign in.")
				}
				if len(ls.Links) == 0 {
					_, err := fmt.Fprintf(a.stdout, "No identity is linked to %s.\n", ls.User)
					return err
				}
				tw := table(a.stdout)
				fmt.Fprintln(tw, "IDENTITY\tCREATED BY\tCREATED")
				for _, l := range ls.Links {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Identity, l.CreatedBy, when(l.CreatedAt))
				}
				return tw.Flush()
			})
		},
	}
	userFlag(cmd, &name)
	return cmd
}
