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
// they may be PINs.
func duplicateKey(b []byte) (string, bool) {
	type object struct {
		keys      map[string]bool
		expectKey bool
	}
	var stack []*object // nil for an array
	top := func() *object {
		if len(stack) == 0 {
			return nil
		}
		return stack[len(stack)-1]
	}
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			stack = append(stack, &object{keys: map[string]bool{}, expectKey: true})
		case '[':
			stack = append(stack, nil)
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
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
				var key string
				if json.Unmarshal(b[i:end+1], &key) != nil {
					key = string(b[i+1 : end])
				}
				folded := strings.ToLower(strings.ToUpper(key))
				if o.keys[folded] {
					return key, true
				}
				o.keys[folded] = true
				o.expectKey = false
			}
			i = end
		}
	}
	return "", false
}

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

// WriteJSON writes v as JSON with the given HTTP status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}
