package pkgdocs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Command is one command of a cobra program as its --help text shows it.
type Command struct {
	// Path is the command's words after the program name (empty for the root).
	Path []string
	// Description is the text before "Usage:" (the command's Long or Short).
	Description string
	// Usage holds the lines of the "Usage:" block.
	Usage []string
	// Subcommands are the names listed in the "…Commands:" blocks.
	Subcommands []string
	// Flags holds the lines of the command's "Flags:" block.
	Flags []string
	// Aliases and Examples hold the lines of those blocks.
	Aliases, Examples []string
	// Trailer is any text after the blocks (such as exit codes), without
	// cobra's closing "Use … --help" hint.
	Trailer string
}

// Name is the full command line, such as "hwauthctl pin verify".
func (c Command) Name(program string) string {
	return strings.TrimSpace(program + " " + strings.Join(c.Path, " "))
}

// ParseHelp splits the help text of a command printed by cobra's default help
// template into its blocks: the description, then titled blocks ("Usage:",
// "Available Commands:", "Flags:", "Global Flags:" …) of indented lines.
func ParseHelp(text string) (Command, error) {
	var (
		c       Command
		desc    []string
		trailer []string
		block   string
	)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line != "" && !strings.HasPrefix(line, " ") && strings.HasSuffix(line, ":") && (block != "" || line == "Usage:"):
			block = strings.TrimSuffix(line, ":")
			if !knownBlock(block) {
				trailer = append(trailer, "", line)
			}
		case block == "":
			desc = append(desc, line)
		case knownBlock(block) && strings.HasPrefix(line, "  "):
			c.addLine(block, line)
		case strings.HasPrefix(line, "Use \"") && strings.HasSuffix(line, "for more information about a command."):
		case knownBlock(block) && line == "":
		default:
			block = "trailer"
			trailer = append(trailer, line)
		}
	}
	if len(c.Usage) == 0 {
		return c, fmt.Errorf("no \"Usage:\" block in the help text")
	}
	c.Description = strings.TrimSpace(strings.Join(desc, "\n"))
	c.Trailer = strings.TrimSpace(strings.Join(trailer, "\n"))
	return c, sc.Err()
}

// knownBlock reports whether block is one that cobra's default template
// writes (and addLine files).
func knownBlock(block string) bool {
	switch block {
	case "Usage", "Aliases", "Examples", "Flags", "Global Flags":
		return true
	}
	return strings.HasSuffix(block, "Commands")
}

// addLine files one indented line under its block. Global flags are
// documented once, with the root command's flags.
func (c *Command) addLine(block, line string) {
	switch {
	case block == "Usage":
		c.Usage = append(c.Usage, strings.TrimSpace(line))
	case block == "Aliases":
		c.Aliases = append(c.Aliases, strings.TrimSpace(line))
	case block == "Examples":
		c.Examples = append(c.Examples, strings.TrimRight(line[2:], " "))
	case block == "Flags":
		c.Flags = append(c.Flags, strings.TrimRight(line[2:], " "))
	case strings.HasSuffix(block, "Commands"):
		if name := strings.Fields(line); len(name) > 0 && name[0] != "help" {
			c.Subcommands = append(c.Subcommands, name[0])
		}
	}
}

// WalkHelp runs the cobra program bin with --help for its root command and,
// depth first, for every subcommand listed (cobra's own "help" command
// aside), and returns the parsed help of each. env is added to the program's
// environment (point its socket somewhere harmless: help must not need a
// daemon).
func WalkHelp(ctx context.Context, bin string, env []string) ([]Command, error) {
	var (
		out  []Command
		walk func(path []string) error
	)
	walk = func(path []string) error {
		args := append(append([]string{}, path...), "--help")
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), env...)
		text, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
		}
		c, err := ParseHelp(string(text))
		if err != nil {
			return fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
		}
		c.Path = path
		out = append(out, c)
		for _, sub := range c.Subcommands {
			if err := walk(append(append([]string{}, path...), sub)); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(nil)
}
