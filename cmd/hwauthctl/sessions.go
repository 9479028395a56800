package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hwauthd/hwauthd/ipc"
)

// signinCmd is `hwauthctl signin [--user U] [--authenticator ID]`.
func signinCmd(a *app) *cobra.Command {
	var name, auth string
	cmd := &cobra.Command{
		Use:   "signin",
		Short: "Sign in with a registered authenticator (asks for the PIN) and open a session",
		Long: "signin verifies the PIN on the authenticator and its possession, and opens a session.\n" +
			"Without --authenticator it uses the present authenticator the user signed in with\n" +
			"last (remembered until forget), else the default, else the oldest registered.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := accountOrSelf(name)
			if err != nil {
				return err
			}
			req := ipc.SignInRequest{User: u, Authenticator: auth}
			if req.PIN, err = a.secrets.read("PIN"); err != nil {
				return err
			}
			defer req.Wipe()
			s, err := a.client().SignIn(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.output(ipc.SignInResponse{Session: *s}, func() error {
				_, err := fmt.Fprintf(a.stdout, "Signed in %s with %s.\nSession %s, expires %s.\n", s.User, s.Authenticator, s.ID, when(s.ExpiresAt))
				return err
			})
		},
	}
	userFlag(cmd, &name)
	cmd.Flags().StringVar(&auth, "authenticator", "", "authenticator id (default: the one used last, else the user's default)")
	return cmd
}

// signoutCmd is `hwauthctl signout SESSION_ID [--forget]`.
func signoutCmd(a *app) *cobra.Command {
	var forget bool
	cmd := &cobra.Command{
		Use:   "signout SESSION_ID",
		Short: "Sign out: end a session (and with --forget delete the remembered sign-in information)",
		Long: "signout ends a session. With --forget it also deletes what hwauthd remembers for\n" +
			"the session's user (the authenticator used last, cached PINs), as forget does.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !forget {
				if err := a.client().SignOut(cmd.Context(), args[0]); err != nil {
					return err
				}
				if a.json {
					return nil
				}
				_, err := fmt.Fprintf(a.stdout, "Signed out: session %s ended.\n", args[0])
				return err
			}
			res, err := a.client().SignOutAndForget(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.output(res, func() error {
				_, err := fmt.Fprintf(a.stdout, "Signed out: session %s ended. %s\n", args[0], forgotten(res))
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&forget, "forget", false, "also delete the user's remembered sign-in information")
	return cmd
}

// sessionsCmd is `hwauthctl sessions [--user U]`.
func sessionsCmd(a *app) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List sign-in sessions (yours; every user's for admins and sign-in services)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ss, err := a.client().Sessions(cmd.Context())
			if err != nil {
				return err
			}
			ss = sessionsOf(ss, name)
			return a.output(ipc.SessionsResponse{Sessions: ss}, func() error { return a.printSessions(ss) })
		},
	}
	cmd.Flags().StringVar(&name, "user", "", "only this user's sessions (default: all you may see)")
	return cmd
}

// sessionsOf keeps the sessions of user, or all when user is empty.
func sessionsOf(ss []ipc.Session, user string) []ipc.Session {
	if user == "" {
		return ss
	}
	out := []ipc.Session{}
	for _, s := range ss {
		if s.User == user {
			out = append(out, s)
		}
	}
	return out
}

// printSessions writes sessions as a table.
func (a *app) printSessions(ss []ipc.Session) error {
	if len(ss) == 0 {
		_, err := fmt.Fprintln(a.stdout, "No session.")
		return err
	}
	tw := table(a.stdout)
	fmt.Fprintln(tw, "ID\tUSER\tAUTHENTICATOR\tSTARTED\tEXPIRES")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.User, s.Authenticator, when(s.StartedAt), when(s.ExpiresAt))
	}
	return tw.Flush()
}

// forgetCmd is `hwauthctl forget [--user U] [--yes]`.
func forgetCmd(a *app) *cobra.Command {
	var name string
	var yes bool
	cmd := &cobra.Command{
		Use:   "forget",
		Short: "Delete a user's remembered sign-in information (asks first)",
		Long: "forget deletes what hwauthd remembers for the user: the authenticator used last\n" +
			"(which sign-in offers first) and PINs cached in their sessions (signin.cache_pin);\n" +
			"registrations stay. It asks for confirmation unless --yes is given.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := accountOrSelf(name)
			if err != nil {
				return err
			}
			if err := a.confirm(yes, "forget sign-in information", fmt.Sprintf("Delete the remembered sign-in information of %s?", u)); err != nil {
				return err
			}
			res, err := a.client().Forget(cmd.Context(), u)
			if err != nil {
				return err
			}
			return a.output(res, func() error {
				_, err := fmt.Fprintln(a.stdout, forgotten(res))
				return err
			})
		},
	}
	userFlag(cmd, &name)
	yesFlag(cmd, &yes)
	return cmd
}

// forgotten says in a sentence what forget deleted.
func forgotten(res *ipc.ForgetResponse) string {
	what := "nothing was remembered"
	if len(res.Forgotten) > 0 {
		what = "deleted " + strings.Join(res.Forgotten, ", ")
	}
	return fmt.Sprintf("Forgot %s's sign-in information: %s.", res.User, what)
}
