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
	r.text(root.Description)
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
	r.section("see also")
	r.WriteString("\\fBhwauthd\\fR(8), \\fBhwauthd.toml\\fR(5)\n")
	return r.Bytes()
}

// firstLine returns the first line of s, without a final full stop.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSuffix(line, ".")
}
