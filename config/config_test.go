package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestParseOverridesDefaults(t *testing.T) {
	cfg := Defaults()
	err := Parse([]byte(`
[daemon]
socket = "/tmp/x.sock"
[api]
request_timeout = "5s"
[pcsc]
enabled = false
`), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Daemon.Socket != "/tmp/x.sock" || cfg.API.RequestTimeout.Duration != 5*time.Second || cfg.PCSC.Enabled {
		t.Fatalf("values not applied: %+v", cfg)
	}
	if cfg.Daemon.StateDir != Defaults().Daemon.StateDir {
		t.Fatalf("unset key lost its default: %q", cfg.Daemon.StateDir)
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	cfg := Defaults()
	err := Parse([]byte(`
[daemon]
socket = "relative.sock"
socket_mode = "999"
log_level = "loud"
[api]
max_body_bytes = 1
`), &cfg)
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, key := range []string{"daemon.socket", "daemon.socket_mode", "daemon.log_level", "api.max_body_bytes"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
}

func TestParseRefusesUnknownKeysAndBadSyntax(t *testing.T) {
	for name, text := range map[string]string{
		"unknown key":     "[daemon]\nsockt = \"/x\"\n",
		"unknown section": "[nope]\na = 1\n",
		"syntax":          "[daemon\n",
		"bad duration":    "[api]\nrequest_timeout = \"soon\"\n",
		"wrong type":      "[pcsc]\nenabled = \"yes\"\n",
	} {
		cfg := Defaults()
		if err := Parse([]byte(text), &cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.toml")
	if _, err := Load(missing, false); err != nil {
		t.Fatalf("missing default file must mean defaults: %v", err)
	}
	if _, err := Load(missing, true); err == nil {
		t.Fatal("missing explicitly named file accepted")
	}
}

// TestDocsListEveryKey keeps docs/config.md in step with the Config struct:
// every key has a row, and every row is a key.
func TestDocsListEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := Keys()
	documented := map[string]bool{}
	section := ""
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "## [") {
			section = strings.Trim(strings.TrimPrefix(line, "## "), "[]")
		}
		if strings.HasPrefix(line, "| `") {
			k := strings.SplitN(strings.TrimPrefix(line, "| `"), "`", 2)[0]
			documented[section+"."+k] = true
		}
	}
	for _, k := range keys {
		if !documented[k] {
			t.Errorf("docs/config.md does not document %s", k)
		}
		delete(documented, k)
	}
	for k := range documented {
		t.Errorf("docs/config.md documents %s, which is not a key", k)
	}
}

func TestKeysWalksStruct(t *testing.T) {
	keys := Keys()
	if len(keys) != countLeaves(reflect.TypeOf(Config{})) {
		t.Fatalf("Keys() = %d keys, struct has %d leaves", len(keys), countLeaves(reflect.TypeOf(Config{})))
	}
}

func countLeaves(t reflect.Type) int {
	n := 0
	for i := range t.NumField() {
		f := t.Field(i).Type
		if f.Kind() == reflect.Struct && f != reflect.TypeOf(Duration{}) {
			n += countLeaves(f)
		} else {
			n++
		}
	}
	return n
}

func TestPolicyMissing(t *testing.T) {
	cards := []string{"smartcard", "virtual-smartcard"}
	for _, tc := range []struct {
		p     Policy
		have  []string
		count int
		oneOf []string
	}{
		{Policy{}, nil, 0, nil},
		{Policy{RequireRegistration: true}, nil, 1, nil},
		{Policy{RequireRegistration: true}, []string{"security-key"}, 0, nil},
		{Policy{RequiredCount: 2}, []string{"security-key"}, 1, nil},
		{Policy{RequiredCount: 2, RequiredKinds: cards}, []string{"security-key"}, 1, cards},
		{Policy{RequiredCount: 2, RequiredKinds: cards}, nil, 2, cards},
		{Policy{RequiredCount: 2, RequiredKinds: cards}, []string{"security-key", "security-key"}, 1, cards},
		{Policy{RequiredCount: 2, RequiredKinds: cards}, []string{"security-key", "virtual-smartcard"}, 0, nil},
		{Policy{RequiredKinds: cards}, []string{"smartcard"}, 0, nil},
	} {
		count, oneOf := tc.p.Missing(tc.have)
		if count != tc.count || !slices.Equal(oneOf, tc.oneOf) {
			t.Errorf("%+v with %v: missing %d %v, want %d %v", tc.p, tc.have, count, oneOf, tc.count, tc.oneOf)
		}
	}
	c := Defaults()
	c.Policy.RequiredCount = 6
	c.Policy.RequiredKinds = []string{"smartcard", "phone"}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "policy.required_count") || !strings.Contains(err.Error(), `"phone"`) {
		t.Errorf("invalid requirements: %v", err)
	}
}
