package pkgdocs

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Section is one [table] of the configuration reference (docs/config.md).
type Section struct {
	// Name is the TOML table name, without brackets.
	Name string
	// Intro is the prose between the heading and the key table, as Markdown
	// paragraphs separated by blank lines.
	Intro string
	// Keys are the table's rows, in document order.
	Keys []Key
}

// Key is one row of a section's key table.
type Key struct {
	// Name is the key within its section.
	Name string
	// Default is the default as the reference writes it (a TOML literal).
	Default string
	// Meaning is the description, in Markdown.
	Meaning string
}

// Reference is the parsed configuration reference.
type Reference struct {
	// Intro is the prose before the first section.
	Intro string
	// Sections are the tables in document order.
	Sections []Section
}

// ParseReference reads docs/config.md: an H1 title, prose, then for each
// table an H2 heading "## [name]", prose and a Markdown table whose rows are
// "| `key` | `default` | meaning |".
func ParseReference(md []byte) (Reference, error) {
	var (
		ref   Reference
		cur   *Section
		prose []string
	)
	flush := func() {
		text := strings.TrimSpace(strings.Join(prose, "\n"))
		if cur == nil {
			ref.Intro = text
		} else if cur.Intro == "" {
			cur.Intro = text
		}
		prose = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(md))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# "):
		case strings.HasPrefix(line, "## ["):
			flush()
			ref.Sections = append(ref.Sections, Section{Name: strings.Trim(strings.TrimPrefix(line, "## "), "[] ")})
			cur = &ref.Sections[len(ref.Sections)-1]
		case strings.HasPrefix(line, "| `"):
			if cur == nil {
				return ref, fmt.Errorf("line %d: key row before any [section]", n)
			}
			k, err := parseRow(line)
			if err != nil {
				return ref, fmt.Errorf("line %d: %w", n, err)
			}
			cur.Keys = append(cur.Keys, k)
		case strings.HasPrefix(line, "|"):
			// Table header and separator.
		default:
			prose = append(prose, line)
		}
	}
	flush()
	return ref, sc.Err()
}

// parseRow splits "| `key` | `default` | meaning |" into its three cells;
// the meaning keeps any further separators it contains.
func parseRow(line string) (Key, error) {
	cells := strings.SplitN(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(line), "|"), "|"), "|", 3)
	if len(cells) != 3 {
		return Key{}, fmt.Errorf("want 3 cells (key, default, meaning): %q", line)
	}
	return Key{
		Name:    strings.Trim(strings.TrimSpace(cells[0]), "`"),
		Default: strings.Trim(strings.TrimSpace(cells[1]), "`"),
		Meaning: strings.TrimSpace(cells[2]),
	}, nil
}

// Lookup returns the row documenting "section.key".
func (r Reference) Lookup(full string) (Key, bool) {
	sec, name, _ := strings.Cut(full, ".")
	for _, s := range r.Sections {
		if s.Name != sec {
			continue
		}
		for _, k := range s.Keys {
			if k.Name == name {
				return k, true
			}
		}
	}
	return Key{}, false
}
