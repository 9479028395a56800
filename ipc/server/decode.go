package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/hwauthd/hwauthd/ipc"
)

// DecodeJSON reads the request body (at most Config.MaxBodyBytes) into v: one
// JSON value, no unknown fields, whatever the Content-Type. Errors are
// *ipc.Error: too_large, or bad_request naming the field (never its value).
// The raw body is zeroed after decoding, since it may hold a PIN.
func DecodeJSON(r *http.Request, v any) error {
	env := envFrom(r)
	limit := env.maxBody
	if r.Body == nil {
		return ipc.Errorf(ipc.CodeBadRequest, "request body is empty; expected a JSON object")
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	defer clear(buf)
	if err == nil {
		// A body cut off by the deadline keeps it: net/http drains what is
		// left before answering, and must not wait for it.
		env.bodyRead()
	}
	if err != nil {
		return ipc.Errorf(ipc.CodeBadRequest, "cannot read the request body: %v", err)
	}
	if int64(len(buf)) > limit {
		return ipc.Errorf(ipc.CodeTooLarge, "request body is larger than %d bytes", limit)
	}
	return decodeBytes(buf, v)
}

// decodeBytes decodes exactly one JSON value from buf into v.
func decodeBytes(buf []byte, v any) error {
	if len(bytes.TrimSpace(buf)) == 0 {
		return ipc.Errorf(ipc.CodeBadRequest, "request body is empty; expected a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(buf))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return ipc.Errorf(ipc.CodeBadRequest, "%s", describeDecodeError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ipc.Errorf(ipc.CodeBadRequest, "request body must hold exactly one JSON value")
	}
	return nil
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
