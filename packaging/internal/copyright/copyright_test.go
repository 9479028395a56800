package copyright

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// moduleDir makes a module directory holding the files.
func moduleDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const mitText = `MIT License

Copyright (c) 2019 Jane Doe

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
`

func TestIdentify(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		id    string
		holds []string
	}{
		{"MIT", map[string]string{"LICENSE": mitText}, "MIT", []string{"2019 Jane Doe"}},
		{"BSD-3 in COPYING", map[string]string{"COPYING": "Copyright 2009 The Go Authors.\n\nRedistribution and use in source and binary\nforms ... Neither the name of Google Inc. nor the names of its contributors may be used to endorse or promote products"}, "BSD-3-Clause", []string{"2009 The Go Authors."}},
		{"BSD-2", map[string]string{"LICENSE": "Copyright (c) 2016, A B <a@b>\nRedistribution and use in source and binary forms, with or without modification"}, "BSD-2-Clause", []string{"2016, A B <a@b>"}},
		{"Apache with NOTICE", map[string]string{"LICENSE.txt": "   Apache License\n   Version 2.0, January 2004\n ... Copyright [yyyy] [name of copyright owner]", "NOTICE": "Copyright 2018 CoreOS, Inc\n"}, "Apache-2.0", []string{"2018 CoreOS, Inc"}},
		{"SPDX tag", map[string]string{"LICENSE": "SPDX-License-Identifier: MPL-2.0\nCopyright 2020 X\n"}, "MPL-2.0", []string{"2020 X"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Identify(moduleDir(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			if l.ID != tc.id || !slices.Equal(l.Copyright, tc.holds) {
				t.Errorf("Identify = %s %q, want %s %q", l.ID, l.Copyright, tc.id, tc.holds)
			}
		})
	}
}

// An unknown license or none at all is an error, never a guess.
func TestIdentifyRefusesUnknown(t *testing.T) {
	if _, err := Identify(moduleDir(t, map[string]string{"LICENSE": "You may do what the author allows.\n"})); err == nil || !strings.Contains(err.Error(), "unknown license") {
		t.Errorf("unknown license: %v", err)
	}
	if _, err := Identify(moduleDir(t, map[string]string{"README": "MIT"})); err == nil || !strings.Contains(err.Error(), "no license file") {
		t.Errorf("no license file: %v", err)
	}
	mods := []Module{{Path: "example.com/odd", Version: "v1.0.0", Dir: moduleDir(t, map[string]string{"LICENSE": "All rights reserved.\n"}), Binaries: []string{"hwauthd"}}}
	if err := Write(new(bytes.Buffer), nil, mods); err == nil || !strings.Contains(err.Error(), "example.com/odd@v1.0.0") {
		t.Errorf("Write with an unknown license: %v", err)
	}
}

// TestWrite: a paragraph per module with its license text (Apache-2.0 by
// reference), continuation lines indented and blank lines as " .".
func TestWrite(t *testing.T) {
	mods := []Module{
		{Path: StdPath, Version: "go1.26.8", Dir: moduleDir(t, map[string]string{"LICENSE": "Copyright 2009 The Go Authors.\n\nRedistribution and use in source and binary forms ... endorse or promote products\n"}), Binaries: []string{"hwauthd", "hwauthctl"}},
		{Path: "example.com/mit", Version: "v1.2.3", Dir: moduleDir(t, map[string]string{"LICENSE": mitText}), Binaries: []string{"hwauthd"}},
		{Path: "example.com/apache", Version: "v0.1.0", Dir: moduleDir(t, map[string]string{"LICENSE": "Apache License\nVersion 2.0, January 2004\n"}), Binaries: []string{"hwauthctl"}},
	}
	var b bytes.Buffer
	if err := Write(&b, []byte("Format: x\n\nLicense: Apache-2.0\n text\n"), mods); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"\nFiles: go/*\nCopyright: 2009 The Go Authors.\nLicense: BSD-3-Clause\n Copyright 2009 The Go Authors.\n .\n Redistribution",
		"Comment: The Go standard library and runtime, go1.26.8, compiled into hwauthd, hwauthctl; license from its LICENSE.\n",
		"\nFiles: example.com/mit/*\nCopyright: 2019 Jane Doe\nLicense: MIT\n MIT License\n .\n Copyright (c) 2019 Jane Doe\n",
		"Comment: Go module example.com/mit v1.2.3, compiled into hwauthd; license from its LICENSE.\n",
		"\nFiles: example.com/apache/*\nCopyright: the authors of example.com/apache\nLicense: Apache-2.0\nComment:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestModules reads this test binary's own build information.
func TestModules(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	mods, err := Modules([]string{exe, exe})
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) == 0 || mods[0].Path != StdPath || mods[0].Version != runtime.Version() {
		t.Fatalf("Modules = %+v, want the standard library first", mods)
	}
	if len(mods[0].Binaries) != 1 {
		t.Errorf("a binary named twice is listed %v", mods[0].Binaries)
	}
	if _, err := Modules([]string{"/etc/passwd"}); err == nil {
		t.Error("a file without build information: no error")
	}
}
