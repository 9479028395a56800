package packaging_test

import (
	"debug/buildinfo"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goBinaries are the shipped programs written in Go.
var goBinaries = []string{"/usr/sbin/hwauthd", "/usr/bin/hwauthctl", "/usr/sbin/hwauthd-pkcs11", "/usr/libexec/hwauthd/hwauthd-pam-helper"}

// TestCopyrightListsEveryModule unpacks the package and checks that its
// copyright file is machine-readable, licenses the project under
// Apache-2.0, and has a paragraph for every module (at its version) and the
// Go release compiled into each shipped Go program.
func TestCopyrightListsEveryModule(t *testing.T) {
	_, deb := buildDeb(t)
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)
	b, err := os.ReadFile(filepath.Join(root, "usr/share/doc/hwauthd/copyright"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{
		"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n",
		"\nFiles: *\nCopyright: 2026 the hwauthd authors\nLicense: Apache-2.0\n",
		"/usr/share/common-licenses/Apache-2.0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("copyright lacks %q", want)
		}
	}
	for _, bin := range goBinaries {
		info, err := buildinfo.ReadFile(filepath.Join(root, bin))
		if err != nil {
			t.Errorf("%s: %v", bin, err)
			continue
		}
		if !strings.Contains(text, "The Go standard library and runtime, "+info.GoVersion+",") {
			t.Errorf("copyright does not list the Go standard library %s of %s", info.GoVersion, bin)
		}
		for _, d := range info.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			if !strings.Contains(text, "\nFiles: "+d.Path+"/*\n") || !strings.Contains(text, "Go module "+d.Path+" "+d.Version+",") {
				t.Errorf("copyright does not list %s %s, compiled into %s", d.Path, d.Version, bin)
			}
		}
	}
}
