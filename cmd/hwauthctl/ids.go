package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// idKind is a kind of id that commands take as their first argument:
// authenticators, registrations, sessions and virtual smart cards. Ids are
// long (a backend prefix and 32 hex digits), so hwauthctl accepts any
// unique prefix of one, with or without the backend prefix ("3f2a" for
// "piv-3f2a…"), and completes them from the running daemon.
type idKind struct {
	what string
	// list returns the ids the caller may name, each with a description
	// for completion.
	list func(ctx context.Context, a *app, cmd *cobra.Command) ([]idChoice, error)
}

// idChoice is one id with what people call it.
type idChoice struct{ id, desc string }

var (
	authenticatorIDs = idKind{"authenticator", func(ctx context.Context, a *app, _ *cobra.Command) ([]idChoice, error) {
		list, err := a.client().Authenticators(ctx)
		out := make([]idChoice, 0, len(list))
		for _, au := range list {
			out = append(out, idChoice{au.ID, au.Label})
		}
		return out, err
	}}
	registrationIDs = idKind{"registration", func(ctx context.Context, a *app, cmd *cobra.Command) ([]idChoice, error) {
		name, _ := cmd.Flags().GetString("user")
		u, err := accountOrSelf(name)
		if err != nil {
			return nil, err
		}
		rs, err := a.client().Registrations(ctx, u)
		if err != nil {
			return nil, err
		}
		out := make([]idChoice, 0, len(rs.Registrations))
		for _, r := range rs.Registrations {
			out = append(out, idChoice{r.ID, r.Label})
		}
		return out, nil
	}}
	sessionIDs = idKind{"session", func(ctx context.Context, a *app, _ *cobra.Command) ([]idChoice, error) {
		list, err := a.client().Sessions(ctx)
		out := make([]idChoice, 0, len(list))
		for _, s := range list {
			out = append(out, idChoice{s.ID, s.User + " since " + when(s.StartedAt)})
		}
		return out, err
	}}
	virtualCardIDs = idKind{"virtual smart card", func(ctx context.Context, a *app, _ *cobra.Command) ([]idChoice, error) {
		list, err := a.client().VirtualSmartcards(ctx)
		out := make([]idChoice, 0, len(list))
		for _, c := range list {
			out = append(out, idChoice{c.ID, c.Label})
		}
		return out, err
	}}
)

// takesID makes the command's first argument an id of kind: completed from
// the daemon, and a unique prefix replaced by the whole id before RunE.
func takesID(a *app, cmd *cobra.Command, kind idKind) *cobra.Command {
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveDefault // a FILE after the id
		}
		choices, _ := kind.list(cmd.Context(), a, cmd)
		var out []cobra.Completion
		for _, c := range choices {
			if strings.HasPrefix(c.id, toComplete) {
				out = append(out, cobra.CompletionWithDesc(c.id, c.desc))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		id, err := kind.resolve(cmd.Context(), a, cmd, args[0])
		args[0] = id
		return err
	}
	return cmd
}

// resolve returns the id that arg names: arg itself when it is an id the
// daemon lists, else the one id arg is a prefix of. Several matches are a
// usage error naming them. When nothing matches, or the ids cannot be
// listed (the daemon is down, or the caller may not list them), arg is
// returned as given and the daemon answers for it.
func (k idKind) resolve(ctx context.Context, a *app, cmd *cobra.Command, arg string) (string, error) {
	choices, err := k.list(ctx, a, cmd)
	if err != nil || arg == "" {
		return arg, nil
	}
	var matches []string
	for _, c := range choices {
		if c.id == arg {
			return arg, nil
		}
		if strings.HasPrefix(c.id, arg) || strings.HasPrefix(bareID(c.id), arg) {
			matches = append(matches, c.id)
		}
	}
	switch len(matches) {
	case 0:
		return arg, nil
	case 1:
		return matches[0], nil
	}
	slices.Sort(matches)
	return arg, usageError{fmt.Errorf("%q is the start of %d %s ids (%s); give more of it",
		arg, len(matches), k.what, strings.Join(matches, ", "))}
}

// bareID is id without its backend prefix ("piv-", "vsc-", "fido-"): a
// prefix is the part before the first dash when it is not hex, which tells
// it from the first group of a UUID.
func bareID(id string) string {
	kind, rest, ok := strings.Cut(id, "-")
	if !ok || strings.Trim(kind, "0123456789abcdefABCDEF") == "" {
		return id
	}
	return rest
}

// takeIDs applies takesID to every command of the tree whose first
// argument, as its Use line names it, is an id: ID (a virtual smart card's
// under vsc, else an authenticator's), AUTHENTICATOR_ID, REGISTRATION_ID or
// SESSION_ID.
func takeIDs(a *app, cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		takeIDs(a, c)
	}
	fields := strings.Fields(cmd.Use)
	if len(fields) < 2 {
		return
	}
	switch fields[1] {
	case "ID":
		if strings.HasPrefix(cmd.CommandPath(), "hwauthctl vsc ") {
			takesID(a, cmd, virtualCardIDs)
		} else {
			takesID(a, cmd, authenticatorIDs)
		}
	case "AUTHENTICATOR_ID":
		takesID(a, cmd, authenticatorIDs)
	case "REGISTRATION_ID":
		takesID(a, cmd, registrationIDs)
	case "SESSION_ID":
		takesID(a, cmd, sessionIDs)
	}
}
