package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/ipc"
)

func decodeCode(t *testing.T, body string, limit int64, v any) (*ipc.Error, error) {
	t.Helper()
	r := httptest.NewRequest("POST", "/v1/x", strings.NewReader(body))
	if limit > 0 {
		r = r.WithContext(context.WithValue(r.Context(), requestEnvKey{}, &requestEnv{maxBody: limit}))
	}
	err := DecodeJSON(r, v)
	var e *ipc.Error
	if err != nil && !errors.As(err, &e) {
		t.Fatalf("DecodeJSON(%q) returned %T %v, want *ipc.Error", body, err, err)
	}
	return e, err
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, body string
		limit      int64
		code       ipc.Code
		msg        string
	}{
		{"valid", `{"pin":"123456"}`, 0, "", ""},
		{"empty", ``, 0, ipc.CodeBadRequest, "empty"},
		{"spaces", "  \n", 0, ipc.CodeBadRequest, "empty"},
		{"unknown field", `{"pin":"1","pn":"2"}`, 0, ipc.CodeBadRequest, `unknown field "pn"`},
		{"pin as number", `{"pin":987654}`, 0, ipc.CodeBadRequest, `field "pin"`},
		{"two values", `{"pin":"1"}{"pin":"2"}`, 0, ipc.CodeBadRequest, "exactly one"},
		{"syntax", `{"pin":}`, 0, ipc.CodeBadRequest, "malformed JSON"},
		{"truncated", `{"pin":"12`, 0, ipc.CodeBadRequest, "JSON"},
		{"array", `[1]`, 0, ipc.CodeBadRequest, "object"},
		{"too large", `{"pin":"` + strings.Repeat("1", 100) + `"}`, 64, ipc.CodeTooLarge, "larger than 64"},
		{"duplicate key", `{"pin":"987654","pin":"123456"}`, 0, ipc.CodeBadRequest, `field "pin" appears more than once`},
		{"duplicate escaped key", `{"pin":"987654","p\u0069n":"123456"}`, 0, ipc.CodeBadRequest, `field "pin" appears more than once`},
	}
	for _, tt := range tests {
		var req ipc.PINVerifyRequest
		e, err := decodeCode(t, tt.body, tt.limit, &req)
		if tt.code == "" {
			if err != nil || string(req.PIN) != "123456" {
				t.Errorf("%s: err %v, pin %q", tt.name, err, []byte(req.PIN))
			}
			continue
		}
		if e == nil || e.Code != tt.code || !strings.Contains(e.Message, tt.msg) {
			t.Errorf("%s: got %v, want %s containing %q", tt.name, e, tt.code, tt.msg)
			continue
		}
		if strings.Contains(e.Message, "987654") {
			t.Errorf("%s: message reveals the value: %s", tt.name, e.Message)
		}
	}
}

func TestDecodeSignRequest(t *testing.T) {
	var req ipc.SignRequest
	_, err := decodeCode(t, `{"key":"9a","algorithm":"ecdsa-sha256","digest":"AQID","pin":"1234"}`, 0, &req)
	if err != nil || !bytes.Equal(req.Digest, []byte{1, 2, 3}) || string(req.PIN) != "1234" {
		t.Fatalf("decode sign request: %v %+v", err, req)
	}
	e, _ := decodeCode(t, `{"digest":"not base64!"}`, 0, &req)
	if e == nil || e.Code != ipc.CodeBadRequest {
		t.Fatalf("bad base64: %v", e)
	}
}

func TestDuplicateKey(t *testing.T) {
	for body, want := range map[string]string{
		`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`: "",
		`{"a":"x\\\"","a":2}`:                       "a",
		`{"s":"{\"a\":1,\"a\":2}"}`:                 "",
		`[{"x":[1,{"y":1,"y":2}]}]`:                 "y",
		`{"a":{"b":1},"a":{"b":1}}`:                 "a",
		`{"pin":"1","PIN":"2"}`:                     "PIN",
		`{"s":"1","\u017f":"2"}`:                    "ſ",
		`{"k":"a,\"k\"","z":1}`:                     "",
	} {
		got, dup := duplicateKey([]byte(body))
		if dup != (want != "") || got != want {
			t.Errorf("duplicateKey(%s) = %q %v, want %q", body, got, dup, want)
		}
	}
}

func TestPeekJSON(t *testing.T) {
	var v struct {
		User string `json:"user"`
	}
	if err := PeekJSON([]byte(`{"user":"alice","pin":"1234"}`), &v); err != nil || v.User != "alice" {
		t.Fatalf("PeekJSON = %v, %q", err, v.User)
	}
	for _, body := range []string{`{"user":"mallory","user":"alice"}`, ``, `{"user":1}`} {
		var e *ipc.Error
		if err := PeekJSON([]byte(body), &v); !errors.As(err, &e) || e.Code != ipc.CodeBadRequest {
			t.Errorf("PeekJSON(%s) = %v, want bad_request", body, err)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	seeds := []string{
		`{"pin":"123456"}`, `{"pin":"1","new_pin":"2"}`, `{"puk":"12345678","new_pin":"1234"}`,
		`{"key":"9a","algorithm":"ecdsa-sha256","digest":"AQID","pin":"1234"}`,
		`{"user":"alice","pin":"1234","authenticator":"piv-1"}`, `{"label":"x","pin":"1","puk":"2","algorithm":"ecc-p256"}`,
		`{"pin":"\u00e9"}`, `{"pin":1}`, `[]`, `{`, ``,
		`{"user":"a","user":"b","pin":"1"}`, `{"user":"a","us\u0065r":"b"}`, `{"user":"a\u0000b","pin":"1"}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		targets := []func() any{
			func() any { return &ipc.PINVerifyRequest{} }, func() any { return &ipc.PINChangeRequest{} },
			func() any { return &ipc.PINUnblockRequest{} }, func() any { return &ipc.SignRequest{} },
			func() any { return &ipc.SignInRequest{} }, func() any { return &ipc.VirtualSmartcardCreateRequest{} },
			func() any { return &ipc.RegisterRequest{} }, func() any { return &ipc.GetAssertionRequest{} },
		}
		v := targets[int(which)%len(targets)]()
		r := httptest.NewRequest("POST", "/v1/x", bytes.NewReader(body))
		err := DecodeJSON(r, v)
		// An access checker's peek at the user agrees with the handler's
		// decoding whenever the handler accepts the body.
		var peek struct {
			User string `json:"user"`
		}
		peekErr := PeekJSON(body, &peek)
		if peekErr != nil {
			var e *ipc.Error
			if !errors.As(peekErr, &e) || e.Code != ipc.CodeBadRequest {
				t.Fatalf("PeekJSON error %T %v, want bad_request", peekErr, peekErr)
			}
		}
		if in, ok := v.(*ipc.SignInRequest); ok && err == nil && (peekErr != nil || peek.User != in.User) {
			t.Fatalf("DecodeJSON read user %q, PeekJSON %q (%v)", in.User, peek.User, peekErr)
		}
		// unknownField agrees with json.Decoder's DisallowUnknownFields,
		// which DecodeJSON no longer uses because it copies the body.
		if json.Unmarshal(body, targets[int(which)%len(targets)]()) == nil {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			decErr := dec.Decode(targets[int(which)%len(targets)]())
			name, unknown := unknownField(body, reflect.TypeOf(v))
			if want := decErr != nil && strings.Contains(decErr.Error(), "unknown field"); unknown != want {
				t.Fatalf("unknownField(%q) = %q %v, json.Decoder says %v", body, name, unknown, decErr)
			}
		}
		if err == nil {
			return
		}
		var e *ipc.Error
		if !errors.As(err, &e) || (e.Code != ipc.CodeBadRequest && e.Code != ipc.CodeTooLarge) {
			t.Fatalf("DecodeJSON error %T %v, want bad_request or too_large", err, err)
		}
		if e.Status() != http.StatusBadRequest && e.Status() != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", e.Status())
		}
	})
}

func TestUnknownField(t *testing.T) {
	type inner struct {
		A string `json:"a"`
	}
	type Embedded struct {
		E int `json:"e"`
	}
	type outer struct {
		Embedded
		PIN   ipc.Secret       `json:"pin"`
		In    inner            `json:"in"`
		List  []inner          `json:"list"`
		Map   map[string]inner `json:"map"`
		Any   any              `json:"any"`
		Raw   json.RawMessage  `json:"raw"`
		Ptr   *inner           `json:"ptr"`
		Skip  string           `json:"-"`
		NoTag string
	}
	for body, want := range map[string]string{
		`{"pin":"1","e":2,"in":{"a":"x"},"list":[{"a":"y"}],"map":{"k":{"a":"z"}},"any":{"q":1},"raw":{"r":[1,{"s":2}]},"ptr":{"a":"p"},"notag":"n"}`: "",
		`{"PIN":"1"}`:                   "",
		`{"pin":"1","pn":"2"}`:          "pn",
		`{"in":{"a":"x","b":"y"}}`:      "b",
		`{"list":[{"a":"x"},{"c":1}]}`:  "c",
		`{"map":{"k":{"d":1}}}`:         "d",
		`{"ptr":{"a":"\"}","f":1}}`:     "f",
		`{"Skip":"x"}`:                  "Skip",
		`{"pin":"\u0031\"x","g":[1,2]}`: "g",
	} {
		got, found := unknownField([]byte(body), reflect.TypeFor[*outer]())
		if found != (want != "") || got != want {
			t.Errorf("unknownField(%s) = %q %v, want %q", body, got, found, want)
		}
	}
}
