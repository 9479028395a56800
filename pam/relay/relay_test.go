package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/pam/signin"
)

// module is the module's side of a Conn in memory: what it will answer
// (in) and what the helper wrote (out).
type module struct {
	in, out bytes.Buffer
}

func (m *module) Read(p []byte) (int, error)  { return m.in.Read(p) }
func (m *module) Write(p []byte) (int, error) { return m.out.Write(p) }

func frame(typ byte, payload string) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

func TestStart(t *testing.T) {
	m := &module{}
	m.in.Write(frame('I', "2\x00authenticate\x00alice\x0032768\x00\x00\x00timeout=1\x00debug\x00"))
	st, err := New(m).ReadStart()
	if err != nil {
		t.Fatal(err)
	}
	if st.Op != "authenticate" || st.User != "alice" || !st.Silent() || st.Session != "" || !slices.Equal(st.Args, []string{"timeout=1", "debug"}) {
		t.Fatalf("start %+v", st)
	}
	for _, bad := range []string{
		"1\x00authenticate\x00alice\x000\x00\x00\x00", // other version
		"2\x00authenticate\x00alice\x000\x00\x00",     // too few fields
		"2\x00authenticate\x00alice\x00x\x00\x00\x00", // flags
		"2\x00authenticate\x00alice\x000\x00\x00s",    // unterminated
	} {
		if _, err := ParseStart([]byte(bad)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseStart(%q) = %v, want ErrProtocol", bad, err)
		}
	}
}

// TestConversation: each message is one C frame with its style; prompts
// get the answer, messages an acknowledgement, and a failed conversation
// or a mismatched answer is an error.
func TestConversation(t *testing.T) {
	m := &module{}
	m.in.Write(frame('R', "123456"))
	m.in.Write(frame('K', ""))
	m.in.Write(frame('X', "Conversation error"))
	m.in.Write(frame('R', "unexpected"))
	c := New(m)
	pin, err := c.PromptSecret("PIN: ")
	if err != nil || string(pin) != "123456" {
		t.Fatalf("PromptSecret = %q, %v", pin, err)
	}
	if err := c.Info("Insert your card"); err != nil {
		t.Fatal(err)
	}
	if err := c.Error("Wrong PIN"); err == nil {
		t.Fatal("failed conversation not reported")
	}
	if err := c.Info("x"); !errors.Is(err, ErrProtocol) {
		t.Fatalf("an answer to a message: %v, want ErrProtocol", err)
	}
	want := slices.Concat(frame('C', "\x01PIN: "), frame('C', "\x04Insert your card"), frame('C', "\x03Wrong PIN"), frame('C', "\x04x"))
	if !bytes.Equal(m.out.Bytes(), want) {
		t.Fatalf("wrote %q\nwant %q", m.out.Bytes(), want)
	}
}

func TestHelperFrames(t *testing.T) {
	m := &module{}
	c := New(m)
	if err := c.AllowSilence(1500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	c.Log(LogInfo, "hello")
	c.KeepSession("s1")
	c.Done(signin.AuthInfoUnavail)
	want := slices.Concat(frame('W', "\x00\x00\x05\xdc"), frame('L', "\x06hello"), frame('S', "s1"), frame('D', "\x09"))
	if !bytes.Equal(m.out.Bytes(), want) {
		t.Fatalf("wrote %q\nwant %q", m.out.Bytes(), want)
	}
	if err := c.Done(signin.Result(99)); err == nil {
		t.Fatal("an unknown result was sent")
	}
	if err := c.Log(LogInfo, string(make([]byte, MaxPayload))); !errors.Is(err, ErrProtocol) {
		t.Fatalf("oversized frame: %v", err)
	}
}

// TestEveryResultHasACode: each signin.Result maps to a PAM code.
func TestEveryResultHasACode(t *testing.T) {
	for r := signin.Success; r <= signin.SessionErr; r++ {
		if _, ok := pamCodes[r]; !ok {
			t.Errorf("%v has no PAM code", r)
		}
	}
}

// readSeeds are frames from the module: FuzzRead's seeds, and
// FuzzModuleParser's too.
var readSeeds = [][]byte{
	frame('I', "2\x00authenticate\x00alice\x000\x00\x00\x00debug\x00"),
	frame('R', "123456"),
	{'R', 0xff, 0xff, 0xff, 0xff},
}

// FuzzRead feeds the helper arbitrary bytes from the module: the start
// frame and the answer to a prompt never panic, and oversized frames are
// refused.
func FuzzRead(f *testing.F) {
	for _, seed := range readSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &module{}
		m.in.Write(b)
		c := New(m)
		// The shortest start frame: a header, the version and four
		// empty fields.
		if st, err := c.ReadStart(); err == nil && len(b) < 11 {
			t.Fatalf("start %+v from %d bytes", st, len(b))
		}
		if p, err := c.PromptSecret("PIN: "); err == nil && len(p) > MaxPayload {
			t.Fatalf("answer of %d bytes", len(p))
		}
	})
}
