package pkgdocs

import (
	"bytes"
	"context"
	"flag"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/hwauthd/hwauthd/config"
)

// TestMain lets the test binary act as a small cobra program (for WalkHelp)
// when PKGDOCS_CLI is set.
func TestMain(m *testing.M) {
	if os.Getenv("PKGDOCS_CLI") == "1" {
		root := testTree()
		root.SetArgs(os.Args[1:])
		if err := root.Execute(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func testTree() *cobra.Command {
	noop := func(*cobra.Command, []string) {}
	root := &cobra.Command{Use: "hwauthctl", Short: "Query hwauthd.", Long: "hwauthctl queries hwauthd.\n\nSecond paragraph."}
	root.PersistentFlags().Bool("json", false, "print the API's JSON")
	pin := &cobra.Command{Use: "pin", Short: "Manage PINs"}
	verify := &cobra.Command{Use: "verify ID", Short: "Verify a PIN", Run: noop, Example: "  hwauthctl pin verify abc"}
	verify.Flags().Bool("pin-stdin", false, "read the PIN from stdin")
	pin.AddCommand(verify, &cobra.Command{Use: "change ID", Short: "Change a PIN", Run: noop})
	root.AddCommand(pin, &cobra.Command{Use: "status", Aliases: []string{"st"}, Short: "Show status", Run: noop})
	return root
}

func readDoc(t *testing.T) Reference {
	t.Helper()
	doc, err := os.ReadFile("../../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ParseReference(doc)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestReferenceCoversKeys(t *testing.T) {
	ref := readDoc(t)
	if ref.Intro == "" {
		t.Error("reference intro is empty")
	}
	for _, k := range config.Keys() {
		if _, ok := ref.Lookup(k); !ok {
			t.Errorf("%s not found in the parsed reference", k)
		}
	}
}

// TestReferenceDefaultsMatchCode compares the defaults docs/config.md states
// with the code's.
func TestReferenceDefaultsMatchCode(t *testing.T) {
	ref := readDoc(t)
	values, err := DefaultValues(config.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range config.Keys() {
		row, _ := ref.Lookup(k)
		if row.Default != values[k] {
			t.Errorf("%s: docs/config.md says %s, the code %s", k, row.Default, values[k])
		}
	}
}

func TestParseRowErrors(t *testing.T) {
	if _, err := ParseReference([]byte("| `k` | `1` | m |\n")); err == nil {
		t.Error("a row before any section was accepted")
	}
	if _, err := ParseReference([]byte("## [s]\n| `k` |\n")); err == nil {
		t.Error("a row with one cell was accepted")
	}
}

// TestDefaultFileRoundTrip parses the generated file as the daemon would:
// as shipped it sets nothing, and with every key uncommented it sets every
// default.
func TestDefaultFileRoundTrip(t *testing.T) {
	values, err := DefaultValues(config.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	file, err := DefaultFile(readDoc(t), config.Keys(), values)
	if err != nil {
		t.Fatal(err)
	}
	shipped := config.Defaults()
	if err := config.Parse(file, &shipped); err != nil {
		t.Fatalf("shipped file does not parse: %v", err)
	}
	var tables map[string]map[string]any
	if _, err := toml.Decode(string(file), &tables); err != nil {
		t.Fatal(err)
	}
	for name, keys := range tables {
		if len(keys) != 0 {
			t.Errorf("shipped file sets [%s] %v", name, keys)
		}
	}
	uncommented := regexp.MustCompile(`(?m)^#([a-z_]+ = )`).ReplaceAll(file, []byte("$1"))
	var all config.Config
	md := 0
	for _, k := range config.Keys() {
		name := k[strings.Index(k, ".")+1:]
		if bytes.Contains(uncommented, []byte("\n"+name+" = ")) {
			md++
		}
	}
	if md != len(config.Keys()) {
		t.Errorf("%d of %d keys appear in the file", md, len(config.Keys()))
	}
	if err := config.Parse(uncommented, &all); err != nil {
		t.Fatalf("uncommented file does not parse: %v", err)
	}
	if !reflect.DeepEqual(all, config.Defaults()) {
		t.Errorf("uncommented file sets %+v, want the defaults %+v", all, config.Defaults())
	}
}

func TestDefaultFileRefusesUndocumentedKey(t *testing.T) {
	values := map[string]string{"daemon.socket": `"/x"`}
	if _, err := DefaultFile(readDoc(t), []string{"daemon.nosuchkey"}, values); err == nil {
		t.Error("an undocumented key was accepted")
	}
	if _, err := DefaultFile(readDoc(t), []string{"daemon.log_level"}, values); err == nil {
		t.Error("a key without a value was accepted")
	}
}

func TestParseFlagUsage(t *testing.T) {
	fs := flag.NewFlagSet("hwauthd", flag.ContinueOnError)
	fs.String("config", "/etc/x.toml", "configuration `file`")
	fs.Bool("version", false, "print the version and exit")
	fs.Bool("v", false, "verbose")
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	fs.PrintDefaults()
	flags, err := ParseFlagUsage(buf.String())
	if err != nil {
		t.Fatal(err)
	}
	want := []Flag{
		{Name: "config", Arg: "file", Usage: `configuration file (default "/etc/x.toml")`},
		{Name: "v", Usage: "verbose"},
		{Name: "version", Usage: "print the version and exit"},
	}
	if !reflect.DeepEqual(flags, want) {
		t.Errorf("got %+v\nwant %+v", flags, want)
	}
	if _, err := ParseFlagUsage("no flags here"); err == nil {
		t.Error("text without options was accepted")
	}
	page := string(DaemonPage(flags))
	for _, s := range []string{`\fB\-config file\fR`, `\fB\-version\fR`, ".TH HWAUTHD 8"} {
		if !strings.Contains(page, s) {
			t.Errorf("hwauthd(8) lacks %q", s)
		}
	}
}

func helpOf(t *testing.T, args ...string) string {
	t.Helper()
	root := testTree()
	var buf bytes.Buffer
	root.SetOut(&buf)
	root.SetArgs(append(args, "--help"))
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestParseHelp(t *testing.T) {
	root, err := ParseHelp(helpOf(t))
	if err != nil {
		t.Fatal(err)
	}
	if root.Description != "hwauthctl queries hwauthd.\n\nSecond paragraph." {
		t.Errorf("description %q", root.Description)
	}
	if !reflect.DeepEqual(root.Subcommands, []string{"completion", "pin", "status"}) {
		t.Errorf("subcommands %q", root.Subcommands)
	}
	if len(root.Flags) != 2 || !strings.Contains(root.Flags[1], "--json") {
		t.Errorf("flags %q", root.Flags)
	}
	verify, err := ParseHelp(helpOf(t, "pin", "verify"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(verify.Usage, []string{"hwauthctl pin verify ID [flags]"}) {
		t.Errorf("usage %q", verify.Usage)
	}
	if len(verify.Examples) != 1 || len(verify.Subcommands) != 0 || !strings.Contains(strings.Join(verify.Flags, "\n"), "--pin-stdin") {
		t.Errorf("verify parsed as %+v", verify)
	}
	if _, err := ParseHelp("just text"); err == nil {
		t.Error("text without Usage was accepted")
	}
}

func TestWalkHelpAndCLIPage(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PKGDOCS_CLI", "1")
	cmds, err := WalkHelp(context.Background(), self, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cmds {
		names = append(names, c.Name("hwauthctl"))
	}
	if !strings.Contains(strings.Join(names, ","), "hwauthctl pin,hwauthctl pin change,hwauthctl pin verify") ||
		!strings.Contains(strings.Join(names, ","), "hwauthctl status") {
		t.Errorf("walked %q", names)
	}
	page := string(CLIPage("hwauthctl", cmds))
	for _, n := range names[1:] {
		if !strings.Contains(page, `.SS "`+literalText(n)+`"`) {
			t.Errorf("hwauthctl(1) has no section for %s", n)
		}
	}
	if !strings.Contains(page, `\-\-pin\-stdin`) || !strings.Contains(page, "Aliases: st") {
		t.Error("hwauthctl(1) lacks a flag or an alias")
	}
}

func TestInlineRoff(t *testing.T) {
	for in, want := range map[string]string{
		"use `--socket` now":   `use \fB\-\-socket\fR now`,
		".dot first":           `\&.dot first`,
		"a [link](http://x) b": "a link b",
		`back\slash`:           `back\eslash`,
		"**bold**\ntext":       `\fBbold\fR text`,
	} {
		if got := inline(in); got != want {
			t.Errorf("inline(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseHelp(f *testing.F) {
	f.Add("Desc\n\nUsage:\n  x [flags]\n\nAvailable Commands:\n  a  b\n\nFlags:\n  -h, --help  help\n")
	f.Add("Usage:\nExit codes:\n  0 ok\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseHelp(s)
		if err == nil && len(c.Usage) == 0 {
			t.Error("no error without usage")
		}
		_ = CLIPage("x", []Command{c, c})
	})
}

func FuzzParseReference(f *testing.F) {
	f.Add("# t\n\nintro\n\n## [a]\n\n| key | default | meaning |\n|---|---|---|\n| `k` | `1` | m |\n")
	f.Add("## [a\n| `k` | x")
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference([]byte(s))
		if err != nil {
			return
		}
		_ = ConfigPage(ref, nil)
	})
}
