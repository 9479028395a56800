// Command gencopyright writes the Debian copyright file of the hwauthd
// package: packaging/debian/copyright (the project's own paragraphs), then
// a paragraph for every Go module compiled into the given binaries, with its
// license read from the module's own license file in the module cache.
// scripts/package.sh runs it for every build:
//
//	go run ./packaging/gencopyright -head packaging/debian/copyright -o build/copyright build/hwauthd …
//
// It fails when a module's license file is missing or names no license it
// knows.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/hwauthd/hwauthd/packaging/internal/copyright"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gencopyright:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		head  = flag.String("head", "packaging/debian/copyright", "the project's own copyright `file`")
		out   = flag.String("o", "", "output `file` (required)")
		goCmd = flag.String("go", "go", "the go `command`, for GOROOT and the module cache")
	)
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		return errors.New("usage: gencopyright -o FILE BINARY…")
	}
	h, err := os.ReadFile(*head)
	if err != nil {
		return err
	}
	mods, err := copyright.Modules(flag.Args())
	if err != nil {
		return err
	}
	if err := copyright.Locate(*goCmd, mods); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := copyright.Write(&b, h, mods); err != nil {
		return err
	}
	return os.WriteFile(*out, b.Bytes(), 0o644)
}
