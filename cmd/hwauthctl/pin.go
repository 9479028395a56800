package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hwauthd/hwauthd/ipc"
)

// pinCmd is `hwauthctl pin verify|change|unblock ID`.
func pinCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin",
		Short: "Verify, change or unblock an authenticator's PIN",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("pin needs a subcommand: verify, change or unblock")}
		},
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "verify ID",
			Short: "Verify the PIN on the authenticator (asks for the PIN)",
			Args:  exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				pin, err := a.secrets.read("PIN")
				if err != nil {
					return err
				}
				defer clear(pin)
				res, err := a.client().VerifyPIN(cmd.Context(), args[0], pin)
				return a.pinResult(res, err, "PIN verified.")
			},
		},
		&cobra.Command{
			Use:   "change ID",
			Short: "Change the PIN (asks for the current PIN and the new PIN twice)",
			Args:  exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.changePIN(cmd, args[0])
			},
		},
		&cobra.Command{
			Use:   "unblock ID",
			Short: "Set a new PIN with the PUK (asks for the PUK and the new PIN twice)",
			Args:  exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				puk, err := a.secrets.read("PUK")
				if err != nil {
					return err
				}
				defer clear(puk)
				newPIN, err := a.secrets.readNew("new PIN")
				if err != nil {
					return err
				}
				defer clear(newPIN)
				res, err := a.client().UnblockPIN(cmd.Context(), args[0], puk, newPIN)
				return a.pinResult(res, err, "PIN unblocked; use the new PIN from now on.")
			},
		},
	)
	return cmd
}

// changePIN asks for the current and the new PIN and changes it on the
// authenticator id.
func (a *app) changePIN(cmd *cobra.Command, id string) error {
	pin, err := a.secrets.read("current PIN")
	if err != nil {
		return err
	}
	defer clear(pin)
	newPIN, err := a.secrets.readNew("new PIN")
	if err != nil {
		return err
	}
	defer clear(newPIN)
	res, err := a.client().ChangePIN(cmd.Context(), id, pin, newPIN)
	return a.pinResult(res, err, "PIN changed.")
}

// pinResult prints the answer of a PIN route.
func (a *app) pinResult(res *ipc.PINResult, err error, done string) error {
	if err != nil {
		return err
	}
	return a.output(res, func() error {
		msg := done
		if n, ok := res.RetriesLeft.Left(); ok {
			msg += fmt.Sprintf(" (%s)", triesLeft(n))
		}
		_, err := fmt.Fprintln(a.stdout, msg)
		return err
	})
}
