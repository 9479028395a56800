package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// The server decodes request bodies with json.Unmarshal, which reads the
// body where it lies, instead of a json.Decoder, which copies it into a
// buffer of its own that nobody can zero: bodies carry PINs (issue #13,
// defect 6). Unmarshal has no DisallowUnknownFields, so unknownField checks
// the keys against the target type itself, reading values in place.

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// fieldSet is the JSON keys of a struct type, as encoding/json matches them
// (exact, then case-insensitively), with each field's type.
type fieldSet struct {
	exact map[string]reflect.Type
	fold  map[string]reflect.Type
}

var fieldSets sync.Map // reflect.Type -> *fieldSet

// fieldsOf returns the JSON fields of struct type t, embedded structs'
// fields included.
func fieldsOf(t reflect.Type) *fieldSet {
	if fs, ok := fieldSets.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{exact: map[string]reflect.Type{}, fold: map[string]reflect.Type{}}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for f := range t.Fields() {
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					add(ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fs.exact[name] = f.Type
			fs.fold[strings.ToLower(name)] = f.Type
		}
	}
	add(t)
	fieldSets.Store(t, fs)
	return fs
}

// lookup returns the type of the field named key, if t has one.
func (fs *fieldSet) lookup(key string) (reflect.Type, bool) {
	if t, ok := fs.exact[key]; ok {
		return t, true
	}
	t, ok := fs.fold[strings.ToLower(key)]
	return t, ok
}

// lookupLiteral is lookup of the key whose JSON string literal is lit,
// without decoding or copying a plain key (plainKey).
func (fs *fieldSet) lookupLiteral(lit []byte) (reflect.Type, bool) {
	plain, ok := plainKey(lit)
	if !ok {
		return fs.lookup(decodeKey(lit))
	}
	if t, ok := fs.exact[string(plain)]; ok {
		return t, true
	}
	var buf [64]byte
	if len(plain) > len(buf) {
		return fs.lookup(string(plain))
	}
	lower := buf[:len(plain)]
	for i, c := range plain {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	t, ok := fs.fold[string(lower)]
	return t, ok
}

// unknownField returns the first key in the valid JSON text b that the
// type t (what b is decoded into) has no field for.
func unknownField(b []byte, t reflect.Type) (string, bool) {
	w := fieldWalker{b: b}
	w.value(t)
	return w.unknown, w.found
}

// fieldWalker walks JSON text that json.Unmarshal has accepted.
type fieldWalker struct {
	b       []byte
	i       int
	unknown string
	found   bool
}

func (w *fieldWalker) space() {
	for w.i < len(w.b) && (w.b[w.i] == ' ' || w.b[w.i] == '\t' || w.b[w.i] == '\n' || w.b[w.i] == '\r') {
		w.i++
	}
}

// value walks one value that is decoded into t (nil: anything goes).
func (w *fieldWalker) value(t reflect.Type) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)) {
		t = nil // the type reads its own JSON
	}
	w.space()
	if w.found || w.i >= len(w.b) {
		return
	}
	switch w.b[w.i] {
	case '{':
		w.object(t)
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		w.i++
		for !w.found {
			w.space()
			if w.b[w.i] == ']' {
				w.i++
				return
			}
			w.value(elem)
			w.space()
			if w.i < len(w.b) && w.b[w.i] == ',' {
				w.i++
			}
		}
	case '"':
		w.i = stringEnd(w.b, w.i)
	default:
		for w.i < len(w.b) && !strings.ContainsRune(",}] \t\n\r", rune(w.b[w.i])) {
			w.i++
		}
	}
}

// object walks an object decoded into t: a struct's keys must be its
// fields; a map's values are of its element type.
func (w *fieldWalker) object(t reflect.Type) {
	var fs *fieldSet
	var elem reflect.Type
	switch {
	case t != nil && t.Kind() == reflect.Struct:
		fs = fieldsOf(t)
	case t != nil && t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	w.i++
	for !w.found {
		w.space()
		if w.b[w.i] == '}' {
			w.i++
			return
		}
		start := w.i
		w.i = stringEnd(w.b, w.i)
		lit := w.b[start:w.i]
		w.space()
		w.i++ // ':'
		vt := elem
		if fs != nil {
			ft, ok := fs.lookupLiteral(lit)
			if !ok {
				w.unknown, w.found = decodeKey(lit), true
				return
			}
			vt = ft
		}
		w.value(vt)
		w.space()
		if w.i < len(w.b) && w.b[w.i] == ',' {
			w.i++
		}
	}
}

// stringEnd returns the index after the string literal starting at b[i].
func stringEnd(b []byte, i int) int {
	for i++; i < len(b) && b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}
