package ipc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretUnmarshal(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`"123456"`, "123456", true},
		{`""`, "", true},
		{`"a\"b\\c\/d\n"`, "a\"b\\c/d\n", true},
		{`"\u00e9\u20ac"`, "é€", true},
		{`"\ud83d\ude00"`, "😀", true},
		{`"é"`, "é", true},
		{`123456`, "", false},
		{`"abc`, "", false},
		{`"a\x"`, "", false},
		{`"a\u12"`, "", false},
		{"\"a\x01\"", "", false},
	}
	for _, tt := range tests {
		var s Secret
		err := s.UnmarshalJSON([]byte(tt.in))
		if (err == nil) != tt.ok {
			t.Errorf("UnmarshalJSON(%s) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && string(s) != tt.want {
			t.Errorf("UnmarshalJSON(%s) = %q, want %q", tt.in, []byte(s), tt.want)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	req := PINChangeRequest{PIN: Secret("123456"), NewPIN: Secret("654321")}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("req", "req", req, "pin", req.PIN)
	j, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", req),
		"%+v":  fmt.Sprintf("%+v", req),
		"%#v":  fmt.Sprintf("%#v", req),
		"%x":   fmt.Sprintf("%x", req.PIN),
		"%s":   fmt.Sprintf("%s", req.PIN),
		"json": string(j),
		"slog": logBuf.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, "123456") || strings.Contains(out, "654321") || strings.Contains(out, "313233") {
			t.Errorf("%s reveals the PIN: %s", name, out)
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s does not say %s: %s", name, Redacted, out)
		}
	}
}

func TestSecretWipe(t *testing.T) {
	req := SignInRequest{User: "alice", PIN: Secret("1234")}
	backing := req.PIN
	req.Wipe()
	if !bytes.Equal(backing, make([]byte, 4)) {
		t.Fatalf("after Wipe the PIN is %v, want zeros", []byte(backing))
	}
}

func TestEncodeRequestRoundTrip(t *testing.T) {
	in := SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: []byte{1, 2, 3}, PIN: Secret("12\"3\\4\x01é")}
	b, err := EncodeRequest(&in)
	if err != nil {
		t.Fatal(err)
	}
	if cap(b) < len(b) {
		t.Fatal("impossible")
	}
	var out SignRequest
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if out.Key != in.Key || out.Algorithm != in.Algorithm || !bytes.Equal(out.Digest, in.Digest) || !bytes.Equal(out.PIN, in.PIN) {
		t.Fatalf("round trip: got %+v, PIN %q; want %+v", out, []byte(out.PIN), in)
	}
	// omitempty on an empty secret drops it.
	b, err = EncodeRequest(SignRequest{Key: "9c"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"pin"`) {
		t.Fatalf("empty omitempty PIN encoded: %s", b)
	}
	if _, err := EncodeRequest(42); err == nil {
		t.Fatal("EncodeRequest(42) succeeded, want error")
	}
}

func FuzzSecretUnmarshal(f *testing.F) {
	for _, s := range []string{`"1234"`, `"\u00e9"`, `"\ud83d\ude00"`, `"\ud83d"`, `"a\\b"`, `null`, `"`, `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Secret
		if err := s.UnmarshalJSON(data); err != nil {
			return
		}
		// Whatever decodes must survive our own encoder and decode equal.
		enc := appendQuoted(nil, s)
		var again Secret
		if err := again.UnmarshalJSON(enc); err != nil {
			t.Fatalf("re-decode %q: %v", enc, err)
		}
		if !bytes.Equal(s, again) {
			t.Fatalf("round trip %q -> %q", []byte(s), []byte(again))
		}
		// encoding/json must agree on valid JSON strings that are valid UTF-8.
		var std string
		if json.Unmarshal(data, &std) == nil && string(data) != "null" && std != string(s) && !strings.ContainsRune(std, '\uFFFD') {
			t.Fatalf("decode %q = %q, encoding/json says %q", data, []byte(s), std)
		}
	})
}
