package apdu

import (
	"bytes"
	"encoding/hex"
	"errors"
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

func TestCommandBytes(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
		want string
	}{
		{"case 1", Command{INS: 0x20, P1: 0xFF, P2: 0x80}, "0020FF80"},
		{"case 2 Le 256", Command{INS: 0xC0, Le: 256}, "00C0000000"},
		{"case 2 Le 16", Command{INS: 0xC0, Le: 16}, "00C0000010"},
		{"case 3", Command{INS: 0x20, P2: 0x80, Data: []byte{1, 2}}, "00200080020102"},
		{"case 4", Command{INS: 0xCB, P1: 0x3F, P2: 0xFF, Data: []byte{0x5C, 1, 0x7E}, Le: 256}, "00CB3FFF035C017E00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.cmd.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(b); got != lower(tt.want) {
				t.Errorf("Bytes() = %s, want %s", got, tt.want)
			}
		})
	}
	for _, c := range []Command{{Data: make([]byte, 256)}, {Le: 257}, {Le: -1}} {
		if _, err := c.Bytes(); err == nil {
			t.Errorf("Bytes() of %d data bytes, Le %d succeeded", len(c.Data), c.Le)
		}
	}
}

func lower(s string) string { return string(bytes.ToLower([]byte(s))) }

func TestParseCommand(t *testing.T) {
	ext := append(mustHex(t, "0087119A000101"), make([]byte, 0x101)...)
	ext = append(ext, 0, 0)
	tests := []struct {
		name    string
		in      []byte
		data    int
		le      int
		wantErr bool
	}{
		{"case 1", mustHex(t, "0020FF80"), 0, 0, false},
		{"case 2S", mustHex(t, "00C0000000"), 0, 256, false},
		{"case 3S", mustHex(t, "00200080020102"), 2, 0, false},
		{"case 4S", mustHex(t, "00CB3FFF035C017E00"), 3, 256, false},
		{"case 2E", mustHex(t, "00C00000000100"), 0, 256, false},
		{"case 2E 65536", mustHex(t, "00C00000000000"), 0, 65536, false},
		{"case 3E", mustHex(t, "002000800000020102"), 2, 0, false},
		{"case 4E", ext, 0x101, 65536, false},
		{"too short", mustHex(t, "0020FF"), 0, 0, true},
		{"Lc too big", mustHex(t, "002000800501"), 0, 0, true},
		{"Lc too small", mustHex(t, "002000800101020304"), 0, 0, true},
		{"extended six bytes", mustHex(t, "002000800001"), 0, 0, true},
		{"extended Lc 0", mustHex(t, "0020008000000001"), 0, 0, true},
		{"extended Lc mismatch", mustHex(t, "00200080000003AA"), 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCommand(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseCommand(%X) = %+v, want error", tt.in, c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Data) != tt.data || c.Le != tt.le {
				t.Errorf("got %d data bytes, Le %d; want %d, %d", len(c.Data), c.Le, tt.data, tt.le)
			}
			if c.CLA != tt.in[0] || c.INS != tt.in[1] || c.P1 != tt.in[2] || c.P2 != tt.in[3] {
				t.Errorf("header %02X%02X%02X%02X, want %X", c.CLA, c.INS, c.P1, c.P2, tt.in[:4])
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	r, err := ParseResponse(mustHex(t, "01026A82"))
	if err != nil || !bytes.Equal(r.Data, []byte{1, 2}) || r.SW != 0x6A82 {
		t.Fatalf("ParseResponse = %+v, %v", r, err)
	}
	if !bytes.Equal(r.Bytes(), mustHex(t, "01026A82")) {
		t.Errorf("Bytes() = %X", r.Bytes())
	}
	for _, b := range [][]byte{nil, {0x90}} {
		if _, err := ParseResponse(b); err == nil {
			t.Errorf("ParseResponse(%X) succeeded", b)
		}
	}
	if err := (Response{SW: 0x9000}).Err(); err != nil {
		t.Errorf("9000 Err() = %v", err)
	}
}

func TestStatusErrorClasses(t *testing.T) {
	tests := []struct {
		sw    uint16
		class error
		name  string
	}{
		{0x6983, hwerr.ErrPINBlocked, "6983 authentication method blocked"},
		{0x6982, hwerr.ErrPINRequired, "6982 security status not satisfied"},
		{0x6A82, hwerr.ErrNotFound, "6A82 file or application not found"},
		{0x6A88, hwerr.ErrNotFound, "6A88 referenced data not found"},
		{0x6A80, hwerr.ErrInvalidInput, "6A80 incorrect parameters in the data field"},
		{0x6700, hwerr.ErrInvalidInput, "6700 wrong length"},
		{0x6A86, hwerr.ErrInvalidInput, "6A86 incorrect parameters P1-P2"},
		{0x6D00, hwerr.ErrNotSupported, "6D00 instruction not supported"},
		{0x6E00, hwerr.ErrNotSupported, "6E00 class not supported"},
		{0x6A81, hwerr.ErrNotSupported, "6A81 function not supported"},
		{0x6A84, hwerr.ErrLimit, "6A84 not enough memory space"},
		{0x6985, hwerr.ErrProtocol, "6985 conditions of use not satisfied"},
		{0x6F00, hwerr.ErrProtocol, "6F00 no precise diagnosis"},
		{0x1234, hwerr.ErrProtocol, "1234 unknown status"},
	}
	all := []error{hwerr.ErrPINBlocked, hwerr.ErrPINRequired, hwerr.ErrNotFound, hwerr.ErrInvalidInput, hwerr.ErrNotSupported, hwerr.ErrProtocol, hwerr.ErrLimit}
	for _, tt := range tests {
		err := error(StatusError{SW: tt.sw})
		wrapped := errors.Join(errors.New("context"), err)
		if got := err.Error(); got != tt.name {
			t.Errorf("%04X Error() = %q, want %q", tt.sw, got, tt.name)
		}
		for _, c := range all {
			if got, want := errors.Is(wrapped, c), c == tt.class; got != want {
				t.Errorf("errors.Is(%04X, %v) = %v, want %v", tt.sw, c, got, want)
			}
		}
		var pin *hwerr.PINIncorrect
		if errors.As(wrapped, &pin) {
			t.Errorf("%04X answers As PINIncorrect", tt.sw)
		}
	}
}

func TestStatusErrorRetries(t *testing.T) {
	for x := range 16 {
		err := error(StatusError{SW: 0x63C0 | uint16(x)})
		var pin *hwerr.PINIncorrect
		if !errors.As(err, &pin) || pin.RetriesLeft != hwerr.TriesLeft(x) {
			t.Fatalf("63C%X: As PINIncorrect = %v, %+v", x, errors.As(err, &pin), pin)
		}
		if errors.Is(err, hwerr.ErrProtocol) || errors.Is(err, hwerr.ErrPINBlocked) {
			t.Errorf("63C%X is also another class", x)
		}
	}
	if got := (StatusError{SW: 0x6110}).Error(); got != "6110 16 bytes remaining" {
		t.Errorf("6110 Error() = %q", got)
	}
	if got := (StatusError{SW: 0x63C2}).Error(); got != "63C2 verification failed, 2 tries left" {
		t.Errorf("63C2 Error() = %q", got)
	}
}

// FuzzParseCommand checks that ParseCommand never panics, that parsed data
// lies inside the input, and that short APDUs re-encode to the same bytes.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"0020FF80", "00C0000000", "00200080020102", "00CB3FFF035C017E00", "00C00000000100", "002000800000020102", "0020008005", "00200080000003AA"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommand(b)
		if err != nil {
			return
		}
		if len(c.Data) > len(b) || c.Le < 0 || c.Le > MaxExtendedLe {
			t.Fatalf("ParseCommand(%X) = %d data bytes, Le %d", b, len(c.Data), c.Le)
		}
		short := len(b) <= 5 || b[4] != 0
		if !short {
			return
		}
		out, err := c.Bytes()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("short APDU %X re-encodes to %X, %v", b, out, err)
		}
	})
}

// FuzzParseResponse checks that ParseResponse never panics and splits every
// response of two or more bytes losslessly.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte{0x90, 0x00})
	f.Add([]byte{1, 2, 0x61, 0x10})
	f.Add([]byte{0x90})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if (err == nil) != (len(b) >= 2) {
			t.Fatalf("ParseResponse(%X) error = %v", b, err)
		}
		if err == nil && !bytes.Equal(r.Bytes(), b) {
			t.Fatalf("round trip %X -> %X", b, r.Bytes())
		}
		if err == nil && r.SW != 0x9000 {
			_ = r.Err().Error()
		}
	})
}
