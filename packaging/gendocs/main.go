// Command gendocs writes the files of the hwauthd package that are generated
// from the code: the default hwauthd.toml and the man pages (into the
// repository, see pkgdocs.Generate) and hwauthctl's shell completions (into a
// build directory). Run it from the repository root:
//
//	go run ./packaging/gendocs -hwauthd build/hwauthd -hwauthctl build/hwauthctl -completions build/completions
//
// scripts/package.sh runs it for every build; `make -f packaging/make.mk docs`
// (or `make docs` with the Makefile including it) refreshes the copies kept in
// the repository.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/packaging/internal/pkgdocs"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		root        = flag.String("root", ".", "repository root `dir`")
		out         = flag.String("out", "", "write the man pages and hwauthd.toml under this `dir` instead of the repository root")
		hwauthd     = flag.String("hwauthd", "", "built hwauthd `binary` (empty: skip hwauthd(8))")
		hwauthctl   = flag.String("hwauthctl", "", "built hwauthctl `binary` (empty: skip hwauthctl(1) and completions)")
		completions = flag.String("completions", "", "`dir` for hwauthctl's shell completions (empty: skip)")
	)
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	doc, err := os.ReadFile(filepath.Join(*root, "docs/config.md"))
	if err != nil {
		return err
	}
	files, err := pkgdocs.Generate(ctx, pkgdocs.Inputs{
		ConfigDoc: doc, Keys: config.Keys(), Defaults: config.Defaults(),
		Hwauthd: *hwauthd, Hwauthctl: *hwauthctl,
	})
	if err != nil {
		return err
	}
	if *out == "" {
		*out = *root
	}
	if err := writeAll(*out, files); err != nil {
		return err
	}
	if *completions == "" || *hwauthctl == "" {
		return nil
	}
	scripts, err := pkgdocs.Completions(ctx, *hwauthctl)
	if err != nil {
		return err
	}
	return writeAll(*completions, scripts)
}

// writeAll writes each file under dir, creating directories as needed.
func writeAll(dir string, files map[string][]byte) error {
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
