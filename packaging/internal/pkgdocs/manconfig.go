package pkgdocs

// ConfigPage renders hwauthd.toml(5) from the configuration reference and the
// code's defaults (see DefaultValues): one subsection per table, one item per
// key with its default.
func ConfigPage(ref Reference, values map[string]string) []byte {
	var r roff
	r.header("hwauthd.toml", "5", "File Formats Manual")
	r.section("name")
	r.WriteString("hwauthd.toml \\- configuration file of the hwauthd daemon\n")
	r.section("synopsis")
	r.WriteString("\\fI/etc/hwauthd/hwauthd.toml\\fR\n")
	r.section("description")
	r.prose(ref.Intro)
	r.prose("The file is TOML. Each section below is a TOML table; each key is shown with its default.")
	for _, s := range ref.Sections {
		r.subsection("[" + s.Name + "]")
		r.prose(s.Intro)
		for _, k := range s.Keys {
			lit := values[s.Name+"."+k.Name]
			if lit == "" {
				lit = k.Default
			}
			r.tagged(k.Name+" = "+lit, k.Meaning)
		}
	}
	r.section("files")
	r.tagged("/etc/hwauthd/hwauthd.toml", "the configuration file; the package installs it with every key commented out at its default.")
	r.section("see also")
	r.WriteString("\\fBhwauthd\\fR(8), \\fBhwauthctl\\fR(1)\n")
	return r.Bytes()
}
