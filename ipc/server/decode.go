package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/hwauthd/hwauthd/ipc"
)

// bodyKey carries a body the server read before the access check
// (BodyAccess).
type bodyKey struct{}

// DecodeJSON reads the request body (at most Config.MaxBodyBytes) into v: one
// JSON value, no unknown fields, no key twice in one object, whatever the
// Content-Type. Errors are *ipc.Error: too_large, or bad_request naming the
// field (never its value). The raw body is zeroed after decoding, since it
// may hold a PIN.
func DecodeJSON(r *http.Request, v any) error {
	if body, ok := r.Context().Value(bodyKey{}).([]byte); ok {
		return decodeBytes(body, v) // zeroed by the server after the handler
	}
	buf, err := readBody(r)
	defer clear(buf)
	if err != nil {
		return err
	}
	return decodeBytes(buf, v)
}

// readBody reads the request body up to the server's limit, within the
// body's read deadline.
func readBody(r *http.Request) ([]byte, error) {
	env := envFrom(r)
	limit := env.maxBody
	if r.Body == nil {
		return nil, nil
	}
	buf, err := readAllWiped(io.LimitReader(r.Body, limit+1), min(r.ContentLength, limit))
	// The bytes it was read from are zeroed where net/http read them.
	wipeRead(r, buf)
	if err != nil {
		clear(buf)
		return nil, ipc.Errorf(ipc.CodeBadRequest, "cannot read the request body: %v", err)
	}
	// A body cut off by the deadline keeps it: net/http drains what is
	// left before answering, and must not wait for it.
	env.bodyRead()
	if int64(len(buf)) > limit {
		clear(buf)
		return nil, ipc.Errorf(ipc.CodeTooLarge, "request body is larger than %d bytes", limit)
	}
	return buf, nil
}

// readAllWiped reads rd to its end as io.ReadAll does, into a buffer of
// sizeHint+1 bytes when sizeHint > 0 (the body's Content-Length, within the
// limit), and zeroes each buffer it outgrows: io.ReadAll leaves them, with
// the start of a body that may hold a PIN, to the garbage collector.
func readAllWiped(rd io.Reader, sizeHint int64) ([]byte, error) {
	b := make([]byte, 0, max(512, sizeHint+1))
	for {
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			grown := make([]byte, len(b), 2*cap(b))
			copy(grown, b)
			clear(b)
			b = grown
		}
	}
}

// decodeBytes decodes exactly one JSON value from buf into v.
func decodeBytes(buf []byte, v any) error {
	if len(bytes.TrimSpace(buf)) == 0 {
		return ipc.Errorf(ipc.CodeBadRequest, "request body is empty; expected a JSON object")
	}
	// Unmarshal reads buf in place; a json.Decoder would copy it.
	if err := json.Unmarshal(buf, v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) && strings.Contains(syn.Error(), "after top-level value") {
			return ipc.Errorf(ipc.CodeBadRequest, "request body must hold exactly one JSON value")
		}
		return ipc.Errorf(ipc.CodeBadRequest, "%s", describeDecodeError(err))
	}
	if name, ok := unknownField(buf, reflect.TypeOf(v)); ok {
		return ipc.Errorf(ipc.CodeBadRequest, "unknown field %q", name)
	}
	if key, dup := duplicateKey(buf); dup {
		return ipc.Errorf(ipc.CodeBadRequest, "field %q appears more than once", key)
	}
	return nil
}

// PeekJSON decodes the fields of v from a body that DecodeJSON will decode in
// full later (an access checker's look at one field): unknown fields are
// skipped, but a key twice in one object is refused, so the checker and the
// handler cannot read different values of one field.
func PeekJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return ipc.Errorf(ipc.CodeBadRequest, "request body is empty; expected a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return ipc.Errorf(ipc.CodeBadRequest, "%s", describeDecodeError(err))
	}
	if key, dup := duplicateKey(body); dup {
		return ipc.Errorf(ipc.CodeBadRequest, "field %q appears more than once", key)
	}
	return nil
}

// duplicateKey returns the first key that appears twice in one object of
// the JSON text b, compared as encoding/json matches them to fields: after
// unescaping and without regard to case ("pin", "p\u0069n" and "PIN" are the
// same key). It reads the values it skips in place, without copying them:
// they may be PINs. Keys are compared where they lie (plainKey) and only a
// key with escapes or non-ASCII bytes is decoded; an object's keys are
// compared one by one up to objectKeysScanned, then through a map.
func duplicateKey(b []byte) (string, bool) {
	var objectsBuf [8]object
	var keysBuf [16]foldedKey
	objects, keys := objectsBuf[:0], keysBuf[:0] // keys: those of every open object, innermost last
	top := func() *object {
		if len(objects) == 0 || objects[len(objects)-1].array {
			return nil
		}
		return &objects[len(objects)-1]
	}
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			objects = append(objects, object{first: len(keys), expectKey: true})
		case '[':
			objects = append(objects, object{array: true})
		case '}', ']':
			if n := len(objects); n > 0 {
				if o := objects[n-1]; !o.array {
					keys = keys[:o.first]
				}
				objects = objects[:n-1]
			}
		case ',':
			if o := top(); o != nil {
				o.expectKey = true
			}
		case '"':
			end := i + 1
			for end < len(b) && b[end] != '"' {
				if b[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(b) {
				return "", false
			}
			if o := top(); o != nil && o.expectKey {
				k := keyOf(b[i : end+1])
				if o.has(keys[o.first:], k) {
					return decodeKey(b[i : end+1]), true
				}
				keys = append(keys, k)
				o.expectKey = false
			}
			i = end
		}
	}
	return "", false
}

// objectKeysScanned is how many keys of one object duplicateKey compares
// one by one before it indexes them in a map (hostile bodies with
// thousands of keys stay linear).
const objectKeysScanned = 16

// object is an open object or array of the text duplicateKey walks.
type object struct {
	array     bool
	expectKey bool
	first     int             // its first key in duplicateKey's keys
	index     map[string]bool // its folded keys, once it has many
}

// has reports whether k is among keys, the object's keys so far, and adds
// it to the object's index when it has one.
func (o *object) has(keys []foldedKey, k foldedKey) bool {
	if o.index == nil && len(keys) >= objectKeysScanned {
		o.index = make(map[string]bool, 2*len(keys))
		for _, prev := range keys {
			o.index[prev.fold()] = true
		}
	}
	if o.index != nil {
		f := k.fold()
		dup := o.index[f]
		o.index[f] = true
		return dup
	}
	for _, prev := range keys {
		if prev.equal(k) {
			return true
		}
	}
	return false
}

// foldedKey is a key as it lies in the text when plainKey accepts it
// (its folded form is its ASCII lower case), else decoded and folded.
type foldedKey struct {
	plain  []byte
	folded string
}

// keyOf returns the key whose JSON string literal is lit.
func keyOf(lit []byte) foldedKey {
	if plain, ok := plainKey(lit); ok {
		return foldedKey{plain: plain}
	}
	return foldedKey{folded: foldKey(decodeKey(lit))}
}

// fold returns the key's folded form.
func (k foldedKey) fold() string {
	if k.plain == nil {
		return k.folded
	}
	return strings.ToLower(string(k.plain))
}

// equal reports whether two keys have the same folded form.
func (k foldedKey) equal(o foldedKey) bool {
	switch {
	case k.plain != nil && o.plain != nil:
		return bytes.EqualFold(k.plain, o.plain) // ASCII only: ASCII case folding
	case k.plain != nil:
		return asciiLowerIs(k.plain, o.folded)
	case o.plain != nil:
		return asciiLowerIs(o.plain, k.folded)
	}
	return k.folded == o.folded
}

// asciiLowerIs reports whether the ASCII lower case of plain is s.
func asciiLowerIs(plain []byte, s string) bool {
	if len(plain) != len(s) {
		return false
	}
	for i, c := range plain {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// plainKey returns the characters of the JSON string literal lit (quotes
// included) when they are what it decodes to: printable ASCII without
// escapes, the keys of every well-behaved client.
func plainKey(lit []byte) ([]byte, bool) {
	if len(lit) < 2 {
		return nil, false
	}
	in := lit[1 : len(lit)-1]
	for _, c := range in {
		if c < 0x20 || c > 0x7e || c == '\\' || c == '"' {
			return nil, false
		}
	}
	return in, true
}

// decodeKey decodes the JSON string literal lit as encoding/json does (a
// literal it refuses is taken as it lies, without its quotes).
func decodeKey(lit []byte) string {
	var key string
	if json.Unmarshal(lit, &key) != nil {
		key = string(lit[1 : len(lit)-1])
	}
	return key
}

// foldKey is the form in which duplicateKey compares a decoded key.
func foldKey(key string) string { return strings.ToLower(strings.ToUpper(key)) }

// describeDecodeError says what is wrong with a body without quoting values.
func describeDecodeError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("request body must be a JSON %s", jsonKind(typ.Type.Kind().String()))
		}
		return fmt.Sprintf("field %q has the wrong type (want %s)", typ.Field, jsonKind(typ.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + name
	}
	return "invalid request body"
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array or base64 string"
	case "int", "int64", "int32", "uint", "uint64", "uint32", "float64":
		return "number"
	case "bool":
		return "boolean"
	}
	return kind
}

// WriteJSON writes v as JSON with the given HTTP status. Nothing is
// written when v cannot be encoded, so the caller can still answer with an
// error.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	b, err := EncodeJSON(v)
	if err != nil {
		return err
	}
	return WriteEncodedJSON(w, status, b)
}

// EncodeJSON returns v encoded as WriteJSON writes it, for a handler that
// keeps an answer to send it again (WriteEncodedJSON).
func EncodeJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	return append(b, '\n'), nil
}

// jsonContentType is the Content-Type of JSON answers, one slice for all
// (Header.Set allocates one per answer); nothing changes its element.
var jsonContentType = []string{"application/json"}

// WriteEncodedJSON writes b, which EncodeJSON returned, with the given HTTP
// status.
func WriteEncodedJSON(w http.ResponseWriter, status int, b []byte) error {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, err := w.Write(b)
	return err
}
