package ipc

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"unicode/utf16"
	"unicode/utf8"
)

// Redacted is what a Secret prints, logs and marshals as.
const Redacted = "[redacted]"

// Secret holds a PIN, PUK or other typed secret. In JSON it is a string (it
// arrives as text the person typed). It never reveals itself: String,
// GoString, Format, LogValue and MarshalJSON all give Redacted, so logging a
// request with slog or fmt cannot leak it. Clients send secrets with
// EncodeRequest, the only encoder that writes them out.
//
// The holder calls Wipe as soon as the secret has been used: the server
// zeroes its copy right after the device call, the client after sending.
type Secret []byte

// Wipe overwrites the secret with zeros.
func (s Secret) Wipe() { clear(s) }

// Empty reports whether no secret was given.
func (s Secret) Empty() bool { return len(s) == 0 }

// String returns Redacted.
func (s Secret) String() string { return Redacted }

// GoString returns Redacted.
func (s Secret) GoString() string { return Redacted }

// Format writes Redacted for every verb, so %x or %s cannot reveal it.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue returns Redacted for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON writes Redacted; see EncodeRequest for sending a secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// errSecretNotString returns the error for a secret field that is not a
// valid JSON string; encoding/json adds the field name to it, never the
// value. It is fresh each time because the decoder fills it in.
func errSecretNotString() error {
	return &json.UnmarshalTypeError{Value: "non-string", Type: reflect.TypeFor[Secret]()}
}

// UnmarshalJSON decodes a JSON string into the secret without making an
// intermediate Go string (which could not be zeroed). JSON null leaves it
// empty.
func (s *Secret) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*s = nil
		return nil
	}
	out, err := unquoteJSON(data)
	if err != nil {
		return err
	}
	s.Wipe()
	*s = out
	return nil
}

// unquoteJSON decodes one JSON string literal into a fresh byte slice
// (RFC 8259 §7). The caller owns and must wipe the result.
func unquoteJSON(data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return nil, errSecretNotString()
	}
	in := data[1 : len(data)-1]
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		c := in[i]
		switch {
		case c == '\\':
			n, next, err := unescape(in, i, out)
			if err != nil {
				clear(out)
				return nil, err
			}
			out, i = n, next
		case c < 0x20 || c == '"':
			clear(out)
			return nil, errSecretNotString()
		default:
			out = append(out, c)
			i++
		}
	}
	return out, nil
}

// unescape decodes the escape sequence at in[i] (a backslash), appends it to
// out and returns the index after it.
func unescape(in []byte, i int, out []byte) ([]byte, int, error) {
	if i+1 >= len(in) {
		return out, 0, errSecretNotString()
	}
	simple := map[byte]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}
	if b, ok := simple[in[i+1]]; ok {
		return append(out, b), i + 2, nil
	}
	if in[i+1] != 'u' {
		return out, 0, errSecretNotString()
	}
	r1, ok := hex4(in, i+2)
	if !ok {
		return out, 0, errSecretNotString()
	}
	next := i + 6
	if utf16.IsSurrogate(r1) && next+1 < len(in) && in[next] == '\\' && in[next+1] == 'u' {
		if r2, ok := hex4(in, next+2); ok {
			if r := utf16.DecodeRune(r1, r2); r != utf8.RuneError {
				return utf8.AppendRune(out, r), next + 6, nil
			}
		}
	}
	if utf16.IsSurrogate(r1) {
		r1 = utf8.RuneError
	}
	return utf8.AppendRune(out, r1), next, nil
}

// hex4 parses four hex digits at in[i:].
func hex4(in []byte, i int) (rune, bool) {
	if i+4 > len(in) {
		return 0, false
	}
	var r rune
	for _, c := range in[i : i+4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// appendQuoted appends s as a JSON string literal to out, escaping what
// RFC 8259 §7 requires. It never builds a Go string from s.
func appendQuoted(out []byte, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	out = append(out, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}
