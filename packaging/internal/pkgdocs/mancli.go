package pkgdocs

import "strings"

// CLIPage renders hwauthctl(1) from the help of every command (see
// WalkHelp); cmds[0] is the root.
func CLIPage(program string, cmds []Command) []byte {
	var r roff
	r.header(program, "1", "User Commands")
	r.section("name")
	root := cmds[0]
	r.WriteString(program + " \\- " + escapeText(firstLine(root.Description)) + "\n")
	r.section("synopsis")
	r.preformatted(root.Usage)
	r.section("description")
	desc, exits := splitExitStatus(root.Description)
	r.text(desc)
	if len(root.Flags) > 0 {
		r.section("options")
		r.preformatted(root.Flags)
	}
	r.section("commands")
	for _, c := range cmds[1:] {
		r.subsection(c.Name(program))
		r.preformatted(c.Usage)
		r.text(c.Description)
		if len(c.Aliases) > 0 {
			r.text("Aliases: " + strings.Join(c.Aliases, ", "))
		}
		if len(c.Flags) > 0 {
			r.preformatted(c.Flags)
		}
		if len(c.Examples) > 0 {
			r.text("Examples:")
			r.preformatted(c.Examples)
		}
		if c.Trailer != "" {
			r.text(c.Trailer)
		}
	}
	if root.Trailer != "" {
		r.section("notes")
		r.text(root.Trailer)
	}
	if len(exits) > 0 {
		r.section("exit status")
		for _, e := range exits {
			r.tagged(e[0], e[1])
		}
	}
	r.section("environment")
	r.tagged("HWAUTHD_SOCKET", "the daemon's socket when `--socket` is not given (default `/run/hwauthd/hwauthd.sock`).")
	r.section("files")
	r.tagged("/run/hwauthd/hwauthd.sock", "hwauthd's socket, where systemd's `hwauthd.socket` listens.")
	r.tagged("/usr/share/bash-completion/completions/hwauthctl, /usr/share/zsh/vendor-completions/_hwauthctl, /usr/share/fish/vendor_completions.d/hwauthctl.fish",
		"shell completions of commands, options and the ids of the running daemon's authenticators, registrations, sessions and virtual smart cards.")
	r.section("see also")
	r.WriteString("\\fBhwauthd\\fR(8), \\fBhwauthd.toml\\fR(5), \\fBhwauthd-pkcs11\\fR(8), \\fBpam_hwauth\\fR(8), \\fBpcscd\\fR(8)\n")
	return r.Bytes()
}

// splitExitStatus takes the "Exit status:" list ("  N  meaning" lines) off
// the end of a description and returns the rest and the list's items.
func splitExitStatus(desc string) (string, [][2]string) {
	head, list, ok := strings.Cut(desc, "Exit status:\n")
	if !ok {
		return desc, nil
	}
	var items [][2]string
	for _, line := range strings.Split(list, "\n") {
		code, meaning, ok := strings.Cut(strings.TrimSpace(line), "  ")
		if !ok {
			continue
		}
		items = append(items, [2]string{code, strings.TrimSpace(meaning)})
	}
	return strings.TrimSpace(head), items
}

// firstLine returns the first line of s, without a final full stop.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSuffix(line, ".")
}
