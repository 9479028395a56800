package packaging_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/packaging/internal/pkgdocs"
)

// generated renders the files gendocs writes, from the code and the built
// programs.
func generated(t *testing.T) map[string][]byte {
	t.Helper()
	build, _ := buildDeb(t)
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs/config.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := pkgdocs.Generate(context.Background(), pkgdocs.Inputs{
		ConfigDoc: doc, Keys: config.Keys(), Defaults: config.Defaults(),
		Hwauthd: filepath.Join(build, "hwauthd"), Hwauthctl: filepath.Join(build, "hwauthctl"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestGeneratedFilesUpToDate fails when the man pages or the default
// hwauthd.toml kept in the repository differ from what the code generates
// now. Refresh them with `make docs` (packaging/make.mk).
func TestGeneratedFilesUpToDate(t *testing.T) {
	for name, want := range generated(t) {
		got, err := os.ReadFile(filepath.Join(repoRoot, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not what the code generates (run `make docs`): %v", name, err)
		}
	}
}

// TestManPagesCoverCode checks the man pages kept in the repository against
// the code: every configuration key, every daemon option and every hwauthctl
// command has its entry.
func TestManPagesCoverCode(t *testing.T) {
	build, _ := buildDeb(t)
	page := func(name string) string {
		b, err := os.ReadFile(filepath.Join(repoRoot, name))
		if err != nil {
			t.Fatalf("%v (run `make docs`)", err)
		}
		return string(b)
	}
	conf := page(pkgdocs.ConfigPagePath)
	for _, k := range config.Keys() {
		sec, name, _ := strings.Cut(k, ".")
		at := strings.Index(conf, `.SS "[`+sec+`]"`)
		if at < 0 || !strings.Contains(conf[at:], "\\fB"+strings.ReplaceAll(name, "-", `\-`)+" = ") {
			t.Errorf("hwauthd.toml(5) does not document %s", k)
		}
	}

	out, _ := exec.Command(filepath.Join(build, "hwauthd"), "-h").CombinedOutput()
	flags, err := pkgdocs.ParseFlagUsage(string(out))
	if err != nil {
		t.Fatalf("hwauthd -h: %v", err)
	}
	daemon := page(pkgdocs.DaemonPagePath)
	for _, f := range flags {
		if !strings.Contains(daemon, `\fB\-`+strings.ReplaceAll(f.Name, "-", `\-`)) {
			t.Errorf("hwauthd(8) does not document -%s", f.Name)
		}
	}

	cmds, err := pkgdocs.WalkHelp(context.Background(), filepath.Join(build, "hwauthctl"),
		[]string{"HWAUTHD_SOCKET=/nonexistent/hwauthd.sock"})
	if err != nil {
		t.Fatal(err)
	}
	cli := page(pkgdocs.CLIPagePath)
	for _, c := range cmds[1:] {
		if !strings.Contains(cli, `.SS "`+strings.ReplaceAll(c.Name("hwauthctl"), "-", `\-`)+`"`) {
			t.Errorf("hwauthctl(1) does not document %q", c.Name("hwauthctl"))
		}
	}
}
