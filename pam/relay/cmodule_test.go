//go:build cgo

package relay

// The module's side of the protocol is C (pam/module/frame.h). These fuzz
// tests run it, compiled by pam/internal/cmodule, beside this package on
// the same inputs: the two must agree on every one. They need cgo; without
// it this package's other tests still build and run.

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/pam/internal/cmodule"
	"github.com/hwauthd/hwauthd/pam/signin"
)

// helperSeeds are streams of frames as the helper writes them.
func helperSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	write := func(do func(c *Conn) error, answer []byte) {
		m := &module{}
		m.in.Write(answer)
		if err := do(New(m)); err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, m.out.Bytes())
	}
	write(func(c *Conn) error { _, err := c.PromptSecret("PIN: "); return err }, frame('R', "123456"))
	write(func(c *Conn) error { return c.Info("Insert your card") }, frame('K', ""))
	write(func(c *Conn) error { return c.Log(LogNotice, "signed in") }, nil)
	write(func(c *Conn) error { return c.KeepSession("s1") }, nil)
	write(func(c *Conn) error { return c.AllowSilence(90 * time.Second) }, nil)
	write(func(c *Conn) error { return c.Done(signin.AuthErr) }, nil)
	return append(seeds, slices.Concat(seeds...))
}

// edgeSeeds are helper frames on both sides of each of the module's rules.
var edgeSeeds = [][]byte{
	frame('C', "\x00x"), frame('C', "\x01x"), frame('C', "\x04x"), frame('C', "\x05x"), frame('C', ""),
	frame('L', "\x07x\x00y"), frame('L', "\x08x"), frame('L', ""),
	frame('S', ""), frame('S', "\x00"), frame('S', "s\x001"),
	frame('W', "\x05\x26\x5c\x00"), frame('W', "\x05\x26\x5c\x01"), frame('W', "\x00\x00\x00"),
	frame('D', "\x1f"), frame('D', "\x20"), frame('D', "\x00\x00"),
	frame('Z', ""),
	frame('L', "\x06"+strings.Repeat("x", MaxPayload-1)), frame('L', "\x06"+strings.Repeat("x", MaxPayload)),
}

// FuzzModuleParser reads a byte stream, frame by frame, with the module's
// C parser (hw_parse_header, hw_parse_frame) and with this package
// (readFrame, ParseHelperFrame): both must find the same frames, stop at the
// same one, and accept and decode each frame alike.
func FuzzModuleParser(f *testing.F) {
	for _, seed := range slices.Concat(readSeeds, helperSeeds(f), edgeSeeds) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &module{}
		m.in.Write(b)
		c := New(m)
		for off := 0; ; {
			typ, p, err := c.readFrame()
			if len(b)-off < cmodule.HeaderSize {
				if err == nil {
					t.Fatalf("at %d: Go read a frame from %d bytes", off, len(b)-off)
				}
				return
			}
			ctyp, n, ok := cmodule.Header([cmodule.HeaderSize]byte(b[off:]))
			end := off + cmodule.HeaderSize + int(n)
			if !ok || end > len(b) {
				if err == nil {
					t.Fatalf("at %d: Go read frame %q of %d bytes, C refuses the header or lacks the payload", off, typ, len(p))
				}
				return
			}
			if err != nil || typ != ctyp || !bytes.Equal(p, b[off+cmodule.HeaderSize:end]) {
				t.Fatalf("at %d: C reads frame %q of %d bytes, Go %q of %d bytes (%v)", off, ctyp, n, typ, len(p), err)
			}
			cf, cok := cmodule.ParseFrame(typ, p)
			gf, gerr := ParseHelperFrame(typ, p)
			if cok != (gerr == nil) {
				t.Fatalf("frame %q %x: the module accepts it: %v; Go: %v", typ, p, cok, gerr)
			}
			want := cmodule.Frame{Type: gf.Type, Style: int(gf.Style), Priority: int(gf.Priority), Text: gf.Text,
				Silence: uint32(gf.Silence / time.Millisecond), Result: int(gf.Result)}
			if cok && cf != want {
				t.Fatalf("frame %q %x: the module reads %+v, Go %+v", typ, p, cf, want)
			}
			off = end
		}
	})
}

// FuzzModuleStart builds the start frame with the module's
// hw_start_payload and reads it with ParseStart: every field comes back as
// the module had it (a C string ends at its first NUL), and the module
// refuses exactly the frames longer than MaxPayload.
func FuzzModuleStart(f *testing.F) {
	f.Add("authenticate", "alice", int32(0), "", "", "debug\ntimeout=1")
	f.Add("open_session", "bob", int32(flagSilent), "s1", "c2", "")
	f.Add("close_session", "", int32(-1), "s\x001", "", strings.Repeat("x", MaxPayload))
	f.Fuzz(func(t *testing.T, op, user string, flags int32, session, login, args string) {
		var argv []string
		if args != "" {
			argv = strings.Split(args, "\n")
		}
		payload, ok := cmodule.StartPayload(op, user, flags, session, login, argv)
		cstr := func(s string) string { s, _, _ = strings.Cut(s, "\x00"); return s }
		want := Start{Op: cstr(op), User: cstr(user), Flags: int(flags), Session: cstr(session), LoginSession: cstr(login)}
		size := 0
		for _, field := range []string{Version, want.Op, want.User, strconv.Itoa(int(flags)), want.Session, want.LoginSession} {
			size += len(field) + 1
		}
		for _, a := range argv {
			want.Args = append(want.Args, cstr(a))
			size += len(cstr(a)) + 1
		}
		if !ok {
			if size <= MaxPayload {
				t.Fatalf("the module refuses a start frame of %d bytes", size)
			}
			return
		}
		if len(payload) != size || size > MaxPayload {
			t.Fatalf("the module built %d bytes, want %d (at most %d)", len(payload), size, MaxPayload)
		}
		st, err := ParseStart(payload)
		if err != nil {
			t.Fatalf("ParseStart(%q): %v", payload, err)
		}
		if st.Op != want.Op || st.User != want.User || st.Flags != want.Flags || st.Session != want.Session ||
			st.LoginSession != want.LoginSession || !slices.Equal(st.Args, want.Args) {
			t.Fatalf("ParseStart(%q) = %+v, want %+v", payload, st, want)
		}
	})
}
