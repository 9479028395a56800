package pkgdocs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
)

// Inputs are what Generate reads.
type Inputs struct {
	// ConfigDoc is the text of docs/config.md.
	ConfigDoc []byte
	// Keys is config.Keys(): every "section.key" of the code, in order.
	Keys []string
	// Defaults is config.Defaults().
	Defaults any
	// Hwauthd and Hwauthctl are paths of the built programs; an empty path
	// leaves that program's man page (and hwauthctl's completions) out.
	Hwauthd, Hwauthctl string
}

// Paths of the generated files that are kept in the repository, relative to
// its root.
const (
	DefaultConfigPath = "packaging/hwauthd.toml"
	ConfigPagePath    = "docs/man/hwauthd.toml.5"
	DaemonPagePath    = "docs/man/hwauthd.8"
	CLIPagePath       = "docs/man/hwauthctl.1"
	HelperPagePath    = "docs/man/hwauthd-pkcs11.8"
)

// helpEnv clears the socket variable of the environment gendocs runs in, so
// that the pages show the programs' real defaults. Help never contacts the
// daemon.
var helpEnv = []string{"HWAUTHD_SOCKET="}

// Generate renders the default configuration file and the man pages, keyed
// by their paths relative to the repository root.
func Generate(ctx context.Context, in Inputs) (map[string][]byte, error) {
	ref, err := ParseReference(in.ConfigDoc)
	if err != nil {
		return nil, fmt.Errorf("docs/config.md: %w", err)
	}
	values, err := DefaultValues(in.Defaults)
	if err != nil {
		return nil, fmt.Errorf("defaults: %w", err)
	}
	toml, err := DefaultFile(ref, in.Keys, values)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{
		DefaultConfigPath: toml,
		ConfigPagePath:    ConfigPage(ref, values),
	}
	if in.Hwauthd != "" {
		flags, err := daemonFlags(ctx, in.Hwauthd)
		if err != nil {
			return nil, err
		}
		out[DaemonPagePath] = DaemonPage(flags)
		out[HelperPagePath] = HelperPage()
	}
	if in.Hwauthctl != "" {
		cmds, err := WalkHelp(ctx, in.Hwauthctl, helpEnv)
		if err != nil {
			return nil, err
		}
		out[CLIPagePath] = CLIPage("hwauthctl", cmds)
	}
	return out, nil
}

// daemonFlags runs the daemon with -h and parses the options it prints.
func daemonFlags(ctx context.Context, bin string) ([]Flag, error) {
	cmd := exec.CommandContext(ctx, bin, "-h")
	cmd.Env = append(os.Environ(), helpEnv...)
	text, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s -h: %w", bin, err)
	}
	flags, err := ParseFlagUsage(string(text))
	if err != nil {
		return nil, fmt.Errorf("%s -h: %w", bin, err)
	}
	return flags, nil
}

// Completions runs cobra's own completion generator in the program bin
// ("bin completion SHELL") and returns the scripts keyed by the file names
// the package installs them under: hwauthctl (bash), _hwauthctl (zsh) and
// hwauthctl.fish.
func Completions(ctx context.Context, bin string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for shell, name := range map[string]string{"bash": "hwauthctl", "zsh": "_hwauthctl", "fish": "hwauthctl.fish"} {
		cmd := exec.CommandContext(ctx, bin, "completion", shell)
		cmd.Env = append(os.Environ(), helpEnv...)
		script, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("%s completion %s: %w", bin, shell, err)
		}
		if len(script) == 0 {
			return nil, fmt.Errorf("%s completion %s: empty script", bin, shell)
		}
		out[name] = script
	}
	return out, nil
}
