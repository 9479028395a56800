package pkgdocs

import (
	"regexp"
	"strings"
)

var (
	mdCode = regexp.MustCompile("`([^`]*)`")
	mdLink = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	mdBold = regexp.MustCompile(`\*\*([^*]*)\*\*`)
)

// plain strips the inline Markdown the reference uses (code spans, links,
// bold) and joins lines.
func plain(md string) string {
	s := mdLink.ReplaceAllString(md, "$1")
	s = mdBold.ReplaceAllString(s, "$1")
	s = mdCode.ReplaceAllString(s, "$1")
	return strings.Join(strings.Fields(s), " ")
}

// wrap breaks text into lines of at most width runes (longer words stay
// whole), each starting with prefix.
func wrap(text, prefix string, width int) []string {
	var (
		lines []string
		cur   string
	)
	for _, w := range strings.Fields(text) {
		if cur != "" && len(prefix)+len(cur)+1+len(w) > width {
			lines = append(lines, prefix+cur)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	if cur != "" {
		lines = append(lines, prefix+cur)
	}
	return lines
}

// paragraphs splits Markdown prose on blank lines.
func paragraphs(md string) []string {
	var out []string
	for _, p := range strings.Split(md, "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
