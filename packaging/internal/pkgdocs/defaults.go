package pkgdocs

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// DefaultValues returns each key of cfg as "section.key" mapped to its value
// written as a TOML literal, exactly as the TOML encoder would write it. cfg
// is a struct of section structs with toml tags, such as config.Defaults().
func DefaultValues(cfg any) (map[string]string, error) {
	out := map[string]string{}
	top := reflect.ValueOf(cfg)
	if top.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config is a %s, want a struct", top.Kind())
	}
	for i := range top.NumField() {
		sec := top.Type().Field(i).Tag.Get("toml")
		sv := top.Field(i)
		for j := range sv.NumField() {
			key := sec + "." + sv.Type().Field(j).Tag.Get("toml")
			lit, err := literal(sv.Field(j).Interface())
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			out[key] = lit
		}
	}
	return out, nil
}

// literal encodes one value as the right-hand side of a TOML key/value line.
func literal(v any) (string, error) {
	// The encoder leaves out a nil or empty list; the file writes it "[]".
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.Len() == 0 {
		return "[]", nil
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(map[string]any{"v": v}); err != nil {
		return "", err
	}
	line := strings.TrimSpace(buf.String())
	lit, ok := strings.CutPrefix(line, "v = ")
	if !ok || strings.Contains(lit, "\n") {
		return "", fmt.Errorf("not a simple TOML value: %q", line)
	}
	return lit, nil
}
