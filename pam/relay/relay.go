// Package relay is the helper's side of the protocol between the PAM module
// pam_hwauth.so (pam/module, C) and its helper (cmd/hwauthd-pam-helper, Go).
//
// The module starts the helper for each PAM call with a socket on the
// helper's file descriptor 3 (ChannelFD) and sends it the call (a Start
// frame). The helper then asks the module, one frame at a time, to show a
// message or prompt through the application's conversation (any PAM style:
// the module passes them through without knowing their meaning), to log a
// line with pam_syslog, to keep a session id for close_session, and finally
// reports the PAM result (Done) and exits.
//
// A frame is a type byte, a 4-byte big-endian payload length and at most
// MaxPayload bytes of payload:
//
//	module → helper  'I' start: NUL-terminated fields: protocol version,
//	                     operation, user, flags, session id, login session
//	                     (XDG_SESSION_ID at open_session), module arguments…
//	                 'R' a prompt's answer   'K' message shown
//	                 'X' the conversation failed: its error text
//	helper → module  'C' style byte + text (answered with R, K or X)
//	                 'L' syslog priority byte + text
//	                 'S' session id to keep  'D' the PAM_* result byte
//	                 'W' 4-byte big-endian milliseconds the helper may
//	                     stay silent before the module kills it
//
// The module allows 10 seconds for the first frame; time spent in the
// application's conversation is not counted. ParseHelperFrame states what
// the module accepts from the helper (pam/module/frame.h is the module's
// side; a fuzz test checks the two agree), and the helper sends nothing
// else. An answer (a PIN) is read
// into its own []byte, never through a buffer that outlives the call, and
// the caller clears it.
package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hwauthd/hwauthd/pam/signin"
)

// ChannelFD is the helper's file descriptor of the socket to the module.
const ChannelFD = 3

// Version is the protocol version in the Start frame.
const Version = "2"

// MaxPayload is the largest payload of a frame, either way.
const MaxPayload = 8192

// MaxSilence is the longest silence the module grants: it reads a longer
// one in a 'W' frame as MaxSilence.
const MaxSilence = 24 * time.Hour

// Frame types.
const (
	typeStart    = 'I'
	typeAnswer   = 'R'
	typeShown    = 'K'
	typeConvErr  = 'X'
	typeConverse = 'C'
	typeLog      = 'L'
	typeSession  = 'S'
	typeSilence  = 'W'
	typeDone     = 'D'
)

// Style is a PAM message style (<security/_pam_types.h>).
type Style byte

// The message styles of Linux-PAM.
const (
	PromptEchoOff Style = 1
	PromptEchoOn  Style = 2
	ErrorMsg      Style = 3
	TextInfo      Style = 4
)

// Priority is a syslog priority (<syslog.h>).
type Priority byte

// The priorities the helper logs at.
const (
	LogErr     Priority = 3
	LogWarning Priority = 4
	LogNotice  Priority = 5
	LogInfo    Priority = 6
	LogDebug   Priority = 7
)

// PAM_SILENT of <security/_pam_types.h>, in Start.Flags.
const flagSilent = 0x8000

// pamReturnValues is _PAM_RETURN_VALUES of <security/_pam_types.h>: every
// PAM_* result is below it.
const pamReturnValues = 32

// Start is the PAM call the module hands the helper.
type Start struct {
	// Op is the module function: "authenticate", "open_session" or
	// "close_session".
	Op string
	// User is PAM_USER ("" when the application has not set it).
	User string
	// Flags are the PAM flags of the call.
	Flags int
	// Session is the hwauthd session id kept by authenticate (open_session,
	// close_session).
	Session string
	// LoginSession is XDG_SESSION_ID of the PAM environment at
	// open_session ("" when pam_systemd has not run before the module).
	LoginSession string
	// Args are the module arguments of the service line.
	Args []string
}

// Silent reports whether the application asked for PAM_SILENT; the module
// already drops messages then.
func (s Start) Silent() bool { return s.Flags&flagSilent != 0 }

// ErrProtocol is a frame that breaks the protocol.
var ErrProtocol = errors.New("pam relay: protocol error")

// Conn is the helper's end of the socket to the module.
type Conn struct {
	rw io.ReadWriter
}

// New returns a Conn over rw (os.NewFile(ChannelFD, …) in the helper).
// Reads are not buffered, so no copy of an answer stays behind.
func New(rw io.ReadWriter) *Conn { return &Conn{rw: rw} }

var _ signin.Conversation = (*Conn)(nil)

// readFrame reads one frame; the payload is a new slice the caller owns.
func (c *Conn) readFrame() (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c.rw, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("pam relay: read: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxPayload {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes", ErrProtocol, n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.rw, p); err != nil {
		clear(p)
		return 0, nil, fmt.Errorf("pam relay: read: %w", err)
	}
	return hdr[0], p, nil
}

// writeFrame writes one frame of the helper: typ, then the parts of the
// payload. It refuses a frame that the module would refuse
// (ParseHelperFrame).
func (c *Conn) writeFrame(typ byte, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > MaxPayload {
		return fmt.Errorf("%w: frame of %d bytes", ErrProtocol, n)
	}
	buf := make([]byte, 5, 5+n)
	buf[0] = typ
	binary.BigEndian.PutUint32(buf[1:], uint32(n))
	for _, p := range parts {
		buf = append(buf, p...)
	}
	if _, err := ParseHelperFrame(typ, buf[5:]); err != nil {
		return err
	}
	if _, err := c.rw.Write(buf); err != nil {
		return fmt.Errorf("pam relay: write: %w", err)
	}
	return nil
}

// ReadStart reads the call the module sends first.
func (c *Conn) ReadStart() (Start, error) {
	typ, p, err := c.readFrame()
	if err != nil {
		return Start{}, err
	}
	if typ != typeStart {
		return Start{}, fmt.Errorf("%w: want the start frame, got %q", ErrProtocol, typ)
	}
	return ParseStart(p)
}

// ParseStart decodes the payload of a start frame.
func ParseStart(p []byte) (Start, error) {
	var fields []string
	for len(p) > 0 {
		i := 0
		for i < len(p) && p[i] != 0 {
			i++
		}
		if i == len(p) {
			return Start{}, fmt.Errorf("%w: unterminated field in the start frame", ErrProtocol)
		}
		fields = append(fields, string(p[:i]))
		p = p[i+1:]
	}
	if len(fields) < 6 {
		return Start{}, fmt.Errorf("%w: start frame of %d fields", ErrProtocol, len(fields))
	}
	if fields[0] != Version {
		return Start{}, fmt.Errorf("%w: protocol version %q, want %q", ErrProtocol, fields[0], Version)
	}
	var flags int
	if _, err := fmt.Sscanf(fields[3], "%d", &flags); err != nil || fmt.Sprint(flags) != fields[3] {
		return Start{}, fmt.Errorf("%w: flags %q", ErrProtocol, fields[3])
	}
	return Start{Op: fields[1], User: fields[2], Flags: flags, Session: fields[4], LoginSession: fields[5], Args: fields[6:]}, nil
}

// HelperFrame is a frame the helper sends, as the module reads it.
type HelperFrame struct {
	Type byte
	// Style is the message style of a 'C' frame.
	Style Style
	// Priority is the syslog priority of an 'L' frame.
	Priority Priority
	// Text is the text of a 'C' or 'L' frame after its style or priority
	// byte, or the session id of an 'S' frame, up to the first NUL: the
	// module reads it as a C string.
	Text string
	// Silence is the silence a 'W' frame allows, at most MaxSilence.
	Silence time.Duration
	// Result is the PAM_* result of a 'D' frame.
	Result byte
}

// ParseHelperFrame decodes a frame that the helper sends, of type typ with
// payload p, as pam_hwauth.so does (hw_parse_frame in pam/module/frame.h).
// A frame the module refuses is ErrProtocol: an unknown type, a style other
// than PAM's four, a priority above LOG_DEBUG, a result that is no PAM_*
// value, an empty payload where one is needed, or a 'W' or 'D' payload of
// the wrong size.
func ParseHelperFrame(typ byte, p []byte) (HelperFrame, error) {
	f := HelperFrame{Type: typ}
	cString := func(b []byte) string {
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return string(b)
	}
	switch {
	case typ == typeConverse && len(p) >= 1:
		f.Style, f.Text = Style(p[0]), cString(p[1:])
		if f.Style < PromptEchoOff || f.Style > TextInfo {
			return HelperFrame{}, fmt.Errorf("%w: message style %d", ErrProtocol, p[0])
		}
	case typ == typeLog && len(p) >= 1:
		f.Priority, f.Text = Priority(p[0]), cString(p[1:])
		if f.Priority > LogDebug {
			return HelperFrame{}, fmt.Errorf("%w: syslog priority %d", ErrProtocol, p[0])
		}
	case typ == typeSession && len(p) >= 1:
		f.Text = cString(p)
	case typ == typeSilence && len(p) == 4:
		f.Silence = min(time.Duration(binary.BigEndian.Uint32(p))*time.Millisecond, MaxSilence)
	case typ == typeDone && len(p) == 1:
		if p[0] >= pamReturnValues {
			return HelperFrame{}, fmt.Errorf("%w: PAM result %d", ErrProtocol, p[0])
		}
		f.Result = p[0]
	default:
		return HelperFrame{}, fmt.Errorf("%w: frame %q of %d bytes from the helper", ErrProtocol, typ, len(p))
	}
	return f, nil
}

// converse sends a message of style and reads the module's answer: the
// answer of a prompt (owned by the caller), nil for a shown message.
func (c *Conn) converse(style Style, text string) ([]byte, error) {
	if err := c.writeFrame(typeConverse, []byte{byte(style)}, []byte(text)); err != nil {
		return nil, err
	}
	typ, p, err := c.readFrame()
	if err != nil {
		return nil, err
	}
	prompt := style == PromptEchoOff || style == PromptEchoOn
	switch {
	case typ == typeConvErr:
		return nil, fmt.Errorf("conversation: %s", p)
	case typ == typeAnswer && prompt:
		return p, nil
	case typ == typeShown && !prompt:
		return nil, nil
	}
	clear(p)
	return nil, fmt.Errorf("%w: answer %q to a message of style %d", ErrProtocol, typ, style)
}

// Prompt asks with style (PromptEchoOff or PromptEchoOn) and returns the
// answer, which the caller clears when done.
func (c *Conn) Prompt(style Style, prompt string) ([]byte, error) {
	if style != PromptEchoOff && style != PromptEchoOn {
		return nil, fmt.Errorf("pam relay: style %d is not a prompt", style)
	}
	return c.converse(style, prompt)
}

// PromptSecret asks with PAM_PROMPT_ECHO_OFF; the caller clears the answer.
func (c *Conn) PromptSecret(prompt string) ([]byte, error) {
	return c.converse(PromptEchoOff, prompt)
}

// PromptEcho asks with echo on (signin.Conversation); the caller clears the
// answer.
func (c *Conn) PromptEcho(prompt string) ([]byte, error) { return c.Prompt(PromptEchoOn, prompt) }

// Info shows msg as PAM_TEXT_INFO.
func (c *Conn) Info(msg string) error {
	_, err := c.converse(TextInfo, msg)
	return err
}

// Error shows msg as PAM_ERROR_MSG.
func (c *Conn) Error(msg string) error {
	_, err := c.converse(ErrorMsg, msg)
	return err
}

// Log writes msg to the auth log through pam_syslog.
func (c *Conn) Log(prio Priority, msg string) error {
	return c.writeFrame(typeLog, []byte{byte(prio)}, []byte(msg))
}

// KeepSession asks the module to keep the hwauthd session id for
// close_session.
func (c *Conn) KeepSession(id string) error {
	if id == "" {
		return fmt.Errorf("pam relay: empty session id")
	}
	return c.writeFrame(typeSession, []byte(id))
}

// AllowSilence tells the module how long the helper may go without
// sending a frame from now on; the module kills a helper that stays silent
// longer.
func (c *Conn) AllowSilence(d time.Duration) error {
	ms := d.Milliseconds()
	if ms < 0 || ms > int64(^uint32(0)) {
		return fmt.Errorf("pam relay: silence of %v out of range", d)
	}
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], uint32(ms))
	return c.writeFrame(typeSilence, p[:])
}

// pamCodes are the values of the PAM_* return codes of
// <security/_pam_types.h> (Linux-PAM's ABI) for each signin.Result.
var pamCodes = map[signin.Result]byte{
	signin.Success:         0,  // PAM_SUCCESS
	signin.ServiceErr:      3,  // PAM_SERVICE_ERR
	signin.AuthErr:         7,  // PAM_AUTH_ERR
	signin.AuthInfoUnavail: 9,  // PAM_AUTHINFO_UNAVAIL
	signin.UserUnknown:     10, // PAM_USER_UNKNOWN
	signin.ConvErr:         19, // PAM_CONV_ERR
	signin.Ignore:          25, // PAM_IGNORE
	signin.SessionErr:      14, // PAM_SESSION_ERR
}

// Done reports the PAM result; the helper exits after it.
func (c *Conn) Done(r signin.Result) error {
	code, ok := pamCodes[r]
	if !ok {
		return fmt.Errorf("pam relay: no PAM code for %v", r)
	}
	return c.writeFrame(typeDone, []byte{code})
}
