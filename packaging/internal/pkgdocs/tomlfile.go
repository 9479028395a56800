package pkgdocs

import (
	"bytes"
	"fmt"
	"strings"
)

// DefaultFile renders the default /etc/hwauthd/hwauthd.toml: every section
// of ref as a table header and every key commented out with its default from
// values (see DefaultValues) and its meaning from ref. Parsed as is, the file
// sets nothing; with every key uncommented it sets every default. keys lists
// every "section.key" of the code (config.Keys()); a key the reference does
// not document, or one the code lacks a value for, is an error.
func DefaultFile(ref Reference, keys []string, values map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# /etc/hwauthd/hwauthd.toml: configuration of hwauthd, the hardware\n")
	b.WriteString("# authentication daemon. Every key is shown commented out with its default;\n")
	b.WriteString("# uncomment a key and change it to override the default. See hwauthd.toml(5).\n")
	b.WriteString("# (Generated from the code by packaging/gendocs.)\n")
	section := ""
	for _, full := range keys {
		sec, name, _ := strings.Cut(full, ".")
		k, ok := ref.Lookup(full)
		if !ok {
			return nil, fmt.Errorf("%s is not in the configuration reference", full)
		}
		lit, ok := values[full]
		if !ok {
			return nil, fmt.Errorf("%s has no default value in the code", full)
		}
		if sec != section {
			fmt.Fprintf(&b, "\n[%s]\n", sec)
			section = sec
		} else {
			b.WriteString("\n")
		}
		for _, l := range wrap(plain(k.Meaning), "# ", 78) {
			b.WriteString(l + "\n")
		}
		fmt.Fprintf(&b, "#%s = %s\n", name, lit)
	}
	return b.Bytes(), nil
}
