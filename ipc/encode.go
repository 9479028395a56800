package ipc

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

var secretType = reflect.TypeFor[Secret]()

// EncodeRequest marshals a request struct (or a pointer to one) as JSON,
// writing its Secret fields out in clear, which json.Marshal never does. It
// follows the `json` tags of the struct's top-level fields, including
// omitempty and "-"; a Secret nested deeper is not revealed. The buffer is
// allocated once at its final size so no stray copy of a secret is left
// behind; the caller clears it after sending.
func EncodeRequest(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil, fmt.Errorf("encode request: %T is not a struct", v)
	}
	type part struct {
		name   string
		secret Secret
		plain  []byte
	}
	var parts []part
	size := 2
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		name, omitEmpty, ok := jsonName(f)
		if !ok {
			continue
		}
		fv := rv.Field(i)
		if omitEmpty && isEmptyJSON(fv) {
			continue
		}
		p := part{name: name}
		if f.Type == secretType {
			p.secret = fv.Interface().(Secret)
			size += 2 + 6*len(p.secret)
		} else {
			b, err := json.Marshal(fv.Interface())
			if err != nil {
				return nil, fmt.Errorf("encode request field %s: %w", name, err)
			}
			p.plain = b
			size += len(b)
		}
		size += len(name) + 4
		parts = append(parts, p)
	}
	out := make([]byte, 0, size)
	out = append(out, '{')
	for i, p := range parts {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendQuoted(out, []byte(p.name))
		out = append(out, ':')
		if p.plain != nil {
			out = append(out, p.plain...)
		} else {
			out = appendQuoted(out, p.secret)
		}
	}
	return append(out, '}'), nil
}

// jsonName returns the JSON name of an exported struct field and whether it
// has omitempty; ok is false for fields that encoding/json skips.
func jsonName(f reflect.StructField) (name string, omitEmpty, ok bool) {
	if !f.IsExported() {
		return "", false, false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false, false
	}
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	for o := range strings.SplitSeq(opts, ",") {
		if o == "omitempty" {
			omitEmpty = true
		}
	}
	return name, omitEmpty, true
}

// isEmptyJSON reports what encoding/json's omitempty treats as empty.
func isEmptyJSON(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}
