package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hwauthd/hwauthd/ipc"
)

// fidoCmd is `hwauthctl fido info|pin`.
func fidoCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fido",
		Short: "Show FIDO2 security keys and set or change their PIN",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("fido needs a subcommand: info or pin")}
		},
	}
	pin := &cobra.Command{
		Use:   "pin",
		Short: "Set or change a security key's PIN",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("fido pin needs a subcommand: set or change")}
		},
	}
	pin.AddCommand(fidoPINSetCmd(a), fidoPINChangeCmd(a))
	cmd.AddCommand(fidoInfoCmd(a), pin)
	return cmd
}

// fidoInfoCmd is `hwauthctl fido info ID`.
func fidoInfoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "info ID",
		Short: "Show a security key: label, serial, PIN retries",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			au, err := a.client().Authenticator(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if au.Kind != ipc.KindSecurityKey {
				return fmt.Errorf("%s is a %s, not a security key; see hwauthctl show %s", au.ID, au.Kind, au.ID)
			}
			return a.output(au, func() error { return printAuthenticator(a.stdout, au, false) })
		},
	}
}

// fidoPINSetCmd is `hwauthctl fido pin set ID`.
func fidoPINSetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "set ID",
		Short: "Set the first PIN of a security key that has none (asks for the new PIN twice)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			newPIN, err := a.secrets.readNew("new PIN")
			if err != nil {
				return err
			}
			defer clear(newPIN)
			res, err := a.client().SetPIN(cmd.Context(), args[0], newPIN)
			return a.pinResult(res, err, "PIN set.")
		},
	}
}

// fidoPINChangeCmd is `hwauthctl fido pin change ID`.
func fidoPINChangeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "change ID",
		Short: "Change a security key's PIN (asks for the current PIN and the new PIN twice)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.changePIN(cmd, args[0])
		},
	}
}
