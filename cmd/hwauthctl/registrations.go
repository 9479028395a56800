package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/hwauthd/hwauthd/ipc"
)

// registerCmd is `hwauthctl register [--user U] [--label L] AUTHENTICATOR_ID`.
func registerCmd(a *app) *cobra.Command {
	var name, label string
	cmd := &cobra.Command{
		Use:   "register AUTHENTICATOR_ID",
		Short: "Register a present authenticator for a user (asks for its PIN)",
		Long: "register binds a present card, virtual smart card or security key to a user; the PIN\n" +
			"and a signature prove possession. A user may have at most the policy's limit (5 by default).",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := accountOrSelf(name)
			if err != nil {
				return err
			}
			req := ipc.RegisterRequest{Authenticator: args[0], Label: label}
			if req.PIN, err = a.secrets.read("PIN"); err != nil {
				return err
			}
			defer req.Wipe()
			reg, err := a.client().Register(cmd.Context(), u, req)
			if err != nil {
				return err
			}
			return a.output(reg, func() error {
				fmt.Fprintf(a.stdout, "Registered %s for %s as %s.\n", regName(*reg), u, reg.ID)
				if reg.Default {
					fmt.Fprintf(a.stdout, "It is %s's default.\n", u)
				}
				return nil
			})
		},
	}
	userFlag(cmd, &name)
	cmd.Flags().StringVar(&label, "label", "", "name of the registration (default: the authenticator's label)")
	return cmd
}

// regName names a registration for people: its label and kind.
func regName(r ipc.Registration) string {
	label := r.Label
	if label == "" {
		label = r.Authenticator
	}
	return fmt.Sprintf("%s (%s)", label, r.Kind)
}

// registrationsCmd is `hwauthctl registrations [--user U]`.
func registrationsCmd(a *app) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "registrations",
		Short: "List a user's registered authenticators and the default",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := accountOrSelf(name)
			if err != nil {
				return err
			}
			rs, err := a.client().Registrations(cmd.Context(), u)
			if err != nil {
				return err
			}
			return a.output(rs, func() error { return printRegistrations(a.stdout, rs) })
		},
	}
	userFlag(cmd, &name)
	return cmd
}

// printRegistrations writes a user's registrations as a table with the
// count against the limit.
func printRegistrations(w io.Writer, rs *ipc.RegistrationsResponse) error {
	if len(rs.Registrations) > 0 {
		tw := table(w)
		fmt.Fprintln(tw, "ID\tDEFAULT\tKIND\tLABEL\tAUTHENTICATOR\tCREATED\tLAST USED")
		for _, r := range rs.Registrations {
			mark, last := "", "never"
			if r.Default {
				mark = "*"
			}
			if r.LastUsedAt != nil {
				last = when(*r.LastUsedAt)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, mark, r.Kind, r.Label, r.Authenticator, when(r.CreatedAt), last)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%d of %d authenticators registered for %s.\n", len(rs.Registrations), rs.Limit, rs.User)
	return err
}

// findRegistration returns the registration id of rs, or not_found.
func findRegistration(rs *ipc.RegistrationsResponse, user, id string) (*ipc.Registration, error) {
	for i := range rs.Registrations {
		if rs.Registrations[i].ID == id {
			return &rs.Registrations[i], nil
		}
	}
	return nil, ipc.Errorf(ipc.CodeNotFound, "%s has no registration %q", user, id)
}

// unregisterCmd is `hwauthctl unregister [--user U] [--yes] REGISTRATION_ID`.
func unregisterCmd(a *app) *cobra.Command {
	var name string
	var yes bool
	cmd := &cobra.Command{
		Use:   "unregister REGISTRATION_ID",
		Short: "Remove a registration (asks first; cannot be undone)",
		Long: "unregister removes one of a user's registrations. It cannot be undone: it asks for\n" +
			"confirmation on the terminal unless --yes is given. When it removes the default,\n" +
			"another registration becomes the default and unregister says which.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := accountOrSelf(name)
			if err != nil {
				return err
			}
			return a.unregister(cmd, u, args[0], yes)
		},
	}
	userFlag(cmd, &name)
	yesFlag(cmd, &yes)
	return cmd
}

// unregister looks the registration up, asks, removes it and says where the
// default went.
func (a *app) unregister(cmd *cobra.Command, u, id string, yes bool) error {
	c := a.client()
	rs, err := c.Registrations(cmd.Context(), u)
	if err != nil {
		return err
	}
	reg, err := findRegistration(rs, u, id)
	if err != nil {
		return err
	}
	q := fmt.Sprintf("Remove %s from %s? This cannot be undone.", regName(*reg), u)
	if err := a.confirm(yes, "remove a registration", q); err != nil {
		return err
	}
	rm, err := c.RemoveRegistration(cmd.Context(), u, id)
	if err != nil {
		return err
	}
	return a.output(rm, func() error {
		fmt.Fprintf(a.stdout, "Removed %s from %s.\n", regName(*reg), u)
		switch {
		case !reg.Default:
		case rm.Default == "":
			fmt.Fprintf(a.stdout, "%s has no registration left, so no default.\n", u)
		default:
			fmt.Fprintf(a.stdout, "The default is now %s.\n", defaultName(rs, rm.Default))
		}
		return nil
	})
}

// defaultName names the new default by label when the list knew it.
func defaultName(rs *ipc.RegistrationsResponse, id string) string {
	for _, r := range rs.Registrations {
		if r.ID == id {
			return regName(r) + ", " + id
		}
	}
	return id
}

// defaultCmd is `hwauthctl default [--user U] REGISTRATION_ID`.
func defaultCmd(a *app) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "default REGISTRATION_ID",
		Short: "Choose a user's default authenticator for sign-in",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := accountOrSelf(name)
			if err != nil {
				return err
			}
			if err := a.client().SetDefault(cmd.Context(), u, args[0]); err != nil {
				return err
			}
			return a.output(map[string]string{"user": u, "default": args[0]}, func() error {
				_, err := fmt.Fprintf(a.stdout, "%s is now %s's default.\n", args[0], u)
				return err
			})
		},
	}
	userFlag(cmd, &name)
	return cmd
}
