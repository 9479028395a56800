package tlv

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	long := bytes.Repeat([]byte{0xAB}, 0x90)
	longer := bytes.Repeat([]byte{0xCD}, 0x123)
	tests := []struct {
		name string
		in   []byte
		want []TLV
	}{
		{"empty", nil, nil},
		{"one byte tag", mustHex(t, "4F0100"), []TLV{{0x4F, []byte{0}}}},
		{"three byte tag", mustHex(t, "5FC1050170"), []TLV{{0x5FC105, []byte{0x70}}}},
		{"two byte tag", mustHex(t, "7F6100"), []TLV{{0x7F61, []byte{}}}},
		{"81 length", append(mustHex(t, "708190"), long...), []TLV{{0x70, long}}},
		{"82 length", append(mustHex(t, "53820123"), longer...), []TLV{{0x53, longer}}},
		{"sequence", mustHex(t, "820081020102"), []TLV{{0x82, []byte{}}, {0x81, []byte{1, 2}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d objects, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i].Tag != tt.want[i].Tag || !bytes.Equal(got[i].Value, tt.want[i].Value) {
					t.Errorf("object %d = %X %X, want %X %X", i, got[i].Tag, got[i].Value, tt.want[i].Tag, tt.want[i].Value)
				}
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"indefinite length", "7080", ErrMalformed},
		{"overlong 81", "70817F" + "00", ErrMalformed},
		{"overlong 82", "708200FF", ErrMalformed},
		{"83 length", "7083000001", ErrMalformed},
		{"tag too long", "5FFFFFFF01", ErrMalformed},
		{"truncated value", "700301", ErrTruncated},
		{"truncated 81", "7081", ErrTruncated},
		{"truncated 82", "708201", ErrTruncated},
		{"missing length", "70", ErrTruncated},
		{"truncated tag", "5FC1", ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(mustHex(t, tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%s) error = %v, want %v", tt.in, err, tt.want)
			}
			if !errors.Is(err, hwerr.ErrProtocol) {
				t.Errorf("error %v does not wrap hwerr.ErrProtocol", err)
			}
		})
	}
}

func TestFind(t *testing.T) {
	data := mustHex(t, "3001AA3402BBCC3E00")
	v, err := Find(data, 0x34)
	if err != nil || !bytes.Equal(v, []byte{0xBB, 0xCC}) {
		t.Fatalf("Find(34) = %X, %v", v, err)
	}
	if _, err := Find(data, 0x35); !errors.Is(err, hwerr.ErrNotFound) {
		t.Errorf("Find(35) error = %v, want not found", err)
	}
	if _, err := Find(mustHex(t, "3001AA3480"), 0x35); !errors.Is(err, ErrMalformed) {
		t.Errorf("Find over malformed data error = %v, want malformed", err)
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		tag  uint32
		val  []byte
		want string
	}{
		{0x82, nil, "8200"},
		{0x5FC102, []byte{1}, "5FC1020101"},
		{0x7F61, []byte{1, 2}, "7F61020102"},
		{0x70, make([]byte, 0x80), "708180" + hex.EncodeToString(make([]byte, 0x80))},
		{0x53, make([]byte, 0x100), "53820100" + hex.EncodeToString(make([]byte, 0x100))},
	}
	for _, tt := range tests {
		got := Encode(tt.tag, tt.val)
		if hex.EncodeToString(got) != strings.ToLower(tt.want) {
			t.Errorf("Encode(%X, %d bytes) = %X, want %s", tt.tag, len(tt.val), got, tt.want)
		}
	}
	if _, err := Append(nil, 0x53, make([]byte, MaxLength+1)); err == nil {
		t.Error("Append of a 65536-byte value succeeded")
	}
	if got := Encode(0x7C, Encode(0x82), Encode(0x81, []byte{9})); !bytes.Equal(got, mustHex(t, "7C0582008101"+"09")) {
		t.Errorf("nested Encode = %X", got)
	}
}

// FuzzTLV checks that Parse never panics and that whatever it accepts
// re-encodes to exactly the input (the parser accepts only canonical forms).
func FuzzTLV(f *testing.F) {
	for _, s := range []string{"", "4F0100", "5FC1050170", "7C0582008101" + "09", "7080", "70817F00", "5FFFFFFF01", "53820100"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Parse(data)
		if err != nil {
			return
		}
		var out []byte
		for _, o := range objs {
			out = append(out, o.Bytes()...)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("round trip %X -> %X", data, out)
		}
	})
}
