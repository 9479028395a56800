// Package copyright writes the Debian copyright file of the hwauthd package:
// the project's own paragraphs, then one paragraph for every Go module
// compiled into the shipped binaries (and the Go standard library), as
// `go version -m` lists them, with the license and copyright read from the
// module's own license file in the module cache. A module whose license
// cannot be identified is an error, never a guess.
package copyright

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Module is a Go module compiled into one or more shipped binaries.
type Module struct {
	Path    string
	Version string
	// Dir is the module's source in the module cache (or GOROOT for the
	// standard library).
	Dir string
	// Binaries are the base names of the binaries that contain it.
	Binaries []string
}

// StdPath is the Module.Path given to the Go standard library and runtime.
const StdPath = "std"

// Modules reads the build information of each binary and returns the
// modules they contain, sorted by path, with the standard library first.
// Dir is left empty; Locate fills it in.
func Modules(binaries []string) ([]Module, error) {
	byKey := map[string]*Module{}
	var order []string
	add := func(path, version, bin string) {
		key := path + "@" + version
		m, ok := byKey[key]
		if !ok {
			m = &Module{Path: path, Version: version}
			byKey[key] = m
			order = append(order, key)
		}
		if !slices.Contains(m.Binaries, bin) {
			m.Binaries = append(m.Binaries, bin)
		}
	}
	for _, b := range binaries {
		info, err := buildinfo.ReadFile(b)
		if err != nil {
			return nil, fmt.Errorf("%s: no Go build information: %w", b, err)
		}
		name := filepath.Base(b)
		add(StdPath, info.GoVersion, name)
		for _, d := range info.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			add(d.Path, d.Version, name)
		}
	}
	mods := make([]Module, 0, len(order))
	for _, k := range order {
		mods = append(mods, *byKey[k])
	}
	slices.SortFunc(mods, func(a, b Module) int {
		switch {
		case a.Path == StdPath:
			return -1
		case b.Path == StdPath:
			return 1
		}
		return strings.Compare(a.Path+"@"+a.Version, b.Path+"@"+b.Version)
	})
	return mods, nil
}

// Locate sets each module's Dir: GOROOT for the standard library, the module
// cache for the others (`go mod download -json`, which reads the cache and
// fetches only what is missing from it).
func Locate(goCmd string, mods []Module) error {
	var args []string
	for i := range mods {
		if mods[i].Path == StdPath {
			root, err := exec.Command(goCmd, "env", "GOROOT").Output()
			if err != nil {
				return fmt.Errorf("go env GOROOT: %w", err)
			}
			mods[i].Dir = strings.TrimSpace(string(root))
			continue
		}
		args = append(args, mods[i].Path+"@"+mods[i].Version)
	}
	if len(args) == 0 {
		return nil
	}
	cmd := exec.Command(goCmd, append([]string{"mod", "download", "-json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go mod download: %w\n%s%s", err, out, stderr.Bytes())
	}
	dirs := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m struct{ Path, Version, Dir, Error string }
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("go mod download -json: %w", err)
		}
		if m.Error != "" {
			return fmt.Errorf("go mod download %s@%s: %s", m.Path, m.Version, m.Error)
		}
		dirs[m.Path+"@"+m.Version] = m.Dir
	}
	for i := range mods {
		if mods[i].Path == StdPath {
			continue
		}
		if mods[i].Dir = dirs[mods[i].Path+"@"+mods[i].Version]; mods[i].Dir == "" {
			return fmt.Errorf("module %s@%s: not in the module cache", mods[i].Path, mods[i].Version)
		}
	}
	return nil
}

// License is what a module's license file says.
type License struct {
	// ID is the SPDX identifier ("MIT", "BSD-3-Clause", "Apache-2.0").
	ID string
	// Copyright holds the copyright lines of the license and NOTICE files.
	Copyright []string
	// Text is the license file's text; Notice the NOTICE file's, if any.
	Text, Notice string
	// File is the license file's name in the module.
	File string
}

// licenseFiles are the names a module's license file goes by, in order of
// preference.
var licenseFiles = []string{"LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "COPYING", "COPYING.txt", "LICENSE-MIT"}

var spdxRE = regexp.MustCompile(`SPDX-License-Identifier:\s*([A-Za-z0-9.+-]+)`)

// Identify reads the license file at the top of a module's directory and
// names its license. It fails when there is no license file or its text is
// none of the licenses it knows.
func Identify(dir string) (License, error) {
	var l License
	for _, name := range licenseFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			l.Text, l.File = string(b), name
			break
		}
	}
	if l.File == "" {
		return l, fmt.Errorf("%s: no license file (%s)", dir, strings.Join(licenseFiles, ", "))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "NOTICE")); err == nil {
		l.Notice = string(b)
	}
	l.ID = identifyText(l.Text)
	if l.ID == "" {
		return l, fmt.Errorf("%s/%s: unknown license", dir, l.File)
	}
	l.Copyright = copyrightLines(l.Text + "\n" + l.Notice)
	return l, nil
}

// identifyText names the license of text by its SPDX tag or by phrases only
// that license has, or returns "".
func identifyText(text string) string {
	if m := spdxRE.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	t := strings.Join(strings.Fields(text), " ")
	has := func(phrases ...string) bool {
		for _, p := range phrases {
			if !strings.Contains(t, p) {
				return false
			}
		}
		return true
	}
	switch {
	case has("Apache License", "Version 2.0, January 2004"):
		return "Apache-2.0"
	case has("Mozilla Public License Version 2.0"):
		return "MPL-2.0"
	case has("Permission is hereby granted, free of charge, to any person obtaining a copy"):
		return "MIT"
	case has("Permission to use, copy, modify, and/or distribute this software for any purpose"):
		return "ISC"
	case has("Redistribution and use in source and binary forms", "endorse or promote products"):
		return "BSD-3-Clause"
	case has("Redistribution and use in source and binary forms"):
		return "BSD-2-Clause"
	}
	return ""
}

// copyrightLines returns the distinct "Copyright …" lines of text, without
// the word itself and without the placeholders of license templates.
func copyrightLines(text string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(strings.ReplaceAll(sc.Text(), "\u200b", ""))
		rest, ok := strings.CutPrefix(line, "Copyright")
		if !ok || strings.Contains(line, "[yyyy]") || strings.Contains(line, "{yyyy}") {
			continue
		}
		rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), "(c)"))
		rest = strings.TrimSpace(strings.TrimPrefix(rest, "(C)"))
		rest = strings.TrimSpace(strings.TrimPrefix(rest, "©"))
		if rest == "" || strings.HasPrefix(rest, "notice") || strings.HasPrefix(rest, "license") {
			continue
		}
		if !slices.Contains(out, rest) {
			out = append(out, rest)
		}
	}
	return out
}

// Write writes the copyright file: head (the project's own paragraphs,
// which must define the Apache-2.0 license paragraph), then a paragraph for
// each module. Licenses other than Apache-2.0 carry their module's full
// text, since each names its own copyright holders.
func Write(w io.Writer, head []byte, mods []Module) error {
	var b bytes.Buffer
	b.Write(bytes.TrimRight(head, "\n"))
	b.WriteString("\n")
	for _, m := range mods {
		l, err := Identify(m.Dir)
		if err != nil {
			return fmt.Errorf("module %s@%s: %w", m.Path, m.Version, err)
		}
		name, comment := m.Path, fmt.Sprintf("Go module %s %s", m.Path, m.Version)
		if m.Path == StdPath {
			name, comment = "go", fmt.Sprintf("The Go standard library and runtime, %s", m.Version)
		}
		comment += fmt.Sprintf(", compiled into %s; license from its %s.", strings.Join(m.Binaries, ", "), l.File)
		holders := l.Copyright
		if len(holders) == 0 {
			holders = []string{"the authors of " + name}
		}
		fmt.Fprintf(&b, "\nFiles: %s/*\nCopyright: %s\n", name, strings.Join(holders, "\n "))
		if l.ID == "Apache-2.0" {
			fmt.Fprintf(&b, "License: Apache-2.0\n")
		} else {
			fmt.Fprintf(&b, "License: %s\n%s", l.ID, indent(l.Text))
		}
		fmt.Fprintf(&b, "Comment: %s\n", comment)
		if l.Notice != "" {
			fmt.Fprintf(&b, " .\n The module's NOTICE file:\n .\n%s", indent(l.Notice))
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// indent formats text as the continuation lines of a field: each line
// indented by a space, empty lines as " .".
func indent(text string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.Trim(strings.ReplaceAll(text, "\r", ""), "\n"), "\n") {
		line = strings.TrimRight(strings.ReplaceAll(line, "\u200b", ""), " \t")
		if line == "" {
			b.WriteString(" .\n")
			continue
		}
		b.WriteString(" " + line + "\n")
	}
	return b.String()
}
