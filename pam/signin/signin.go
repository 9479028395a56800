// Package signin is the logic of the PAM module pam_hwauth.so, free of cgo
// so that it is tested against a real API server: find the user's
// authenticator among the present ones (waiting for an insertion on the
// event stream when none is there), ask for its PIN, sign in through
// hwauthd's socket, and turn the answer into a PAM result and words for the
// person (SPEC.md R2, R10, R13 and POST /v1/sign-in).
//
// The PIN is asked once per call: the module never retries it (a PAM
// application that loops asks the person again). It lives in one []byte
// that is cleared after the request; it is never logged or put in a message.
package signin

import (
	"context"
	"fmt"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/client"
)

// Conversation is the PAM conversation as the module uses it.
type Conversation interface {
	// PromptSecret asks with echo off (PAM_PROMPT_ECHO_OFF) and returns the
	// answer, which the caller clears when done.
	PromptSecret(prompt string) ([]byte, error)
	// PromptEcho asks with echo on (PAM_PROMPT_ECHO_ON); the caller clears
	// the answer.
	PromptEcho(prompt string) ([]byte, error)
	// Info shows a message (PAM_TEXT_INFO).
	Info(msg string) error
	// Error shows an error message (PAM_ERROR_MSG).
	Error(msg string) error
}

// Module runs one authentication for the PAM module.
type Module struct {
	// Client talks to hwauthd.
	Client *client.Client
	// Conv is the PAM conversation of the transaction.
	Conv Conversation
	// Opts are the service line's arguments.
	Opts Options
	// Debug receives a line per step when the debug argument is set; nil
	// discards them. Lines never hold a PIN.
	Debug func(msg string)
}

// Outcome is what an authentication ended with.
type Outcome struct {
	// Result is the PAM return value.
	Result Result
	// Session is hwauthd's session after a successful sign-in.
	Session *ipc.Session
	// Authenticator is the id of the authenticator used, when one was.
	Authenticator string
	// Reason says why, for the log (an API code or a short phrase); never a
	// secret.
	Reason string
}

// Authenticate signs user in with a card or key. Messages for the person go
// through the conversation; the outcome carries the PAM result.
func (m *Module) Authenticate(ctx context.Context, user string) Outcome {
	if user == "" {
		return Outcome{Result: UserUnknown, Reason: "empty user name"}
	}
	rctx, cancel := context.WithTimeout(ctx, m.Opts.RequestTimeout)
	regs, err := m.Client.Registrations(rctx, user)
	cancel()
	if client.IsCode(err, ipc.CodeNotFound) {
		return Outcome{Result: UserUnknown, Reason: "no such account"}
	}
	if err != nil {
		return m.failure(err, user)
	}
	if out, ok := m.required(ctx, user); !ok {
		return out
	}
	if len(regs.Registrations) == 0 {
		m.say(m.Conv.Error, fmt.Sprintf("No smart card or security key is registered for %s, so sign in with your password.", user))
		return Outcome{Result: AuthInfoUnavail, Reason: string(ipc.CodeNotRegistered)}
	}
	auth, out, ok := m.findAuthenticator(ctx, user, regs)
	if !ok {
		return out
	}
	out = m.signIn(ctx, user, auth)
	out.Authenticator = auth.ID
	return out
}

// required checks that the user has registered what the organisation's
// policy requires (SPEC.md R13): when not, it says what is missing, in the
// daemon's words, and the stack goes on to the next method. ok is true when
// nothing is missing.
func (m *Module) required(ctx context.Context, user string) (out Outcome, ok bool) {
	rctx, cancel := context.WithTimeout(ctx, m.Opts.RequestTimeout)
	req, err := m.Client.Requirements(rctx, user)
	cancel()
	if err != nil {
		return m.failure(err, user), false
	}
	if req.Satisfied {
		return Outcome{}, true
	}
	m.say(m.Conv.Error, req.Message)
	return Outcome{Result: AuthInfoUnavail, Reason: string(ipc.CodeRegistrationRequired)}, false
}

// signIn asks for the PIN of auth and signs in with it.
func (m *Module) signIn(ctx context.Context, user string, auth choice) Outcome {
	if auth.PIN.Blocked {
		m.debug("authenticator " + auth.ID + " is blocked; not asking for the PIN")
		return m.blocked(ctx, auth.Authenticator)
	}
	pin, err := m.Conv.PromptSecret(fmt.Sprintf("PIN for %s: ", auth.label))
	defer clear(pin)
	if err != nil {
		return Outcome{Result: ConvErr, Reason: "conversation: " + err.Error()}
	}
	if len(pin) == 0 {
		m.say(m.Conv.Error, "No PIN was entered.")
		return Outcome{Result: AuthErr, Reason: "empty PIN"}
	}
	m.debug("signing in with " + auth.ID)
	rctx, cancel := context.WithTimeout(ctx, m.Opts.RequestTimeout)
	defer cancel()
	// Pending: the session lasts only until the PAM session phase opens it
	// (OpenSession), so an application that only authenticates leaves none
	// behind.
	sess, err := m.Client.SignIn(rctx, ipc.SignInRequest{User: user, PIN: ipc.Secret(pin), Authenticator: auth.ID, Pending: true})
	if err != nil {
		return m.failure(err, user)
	}
	return Outcome{Result: Success, Session: sess, Reason: "signed in"}
}

// blocked tells the person that the PIN of a is blocked and what they can
// do, worded by the daemon's policy, without asking for a PIN.
func (m *Module) blocked(ctx context.Context, a ipc.Authenticator) Outcome {
	rctx, cancel := context.WithTimeout(ctx, m.Opts.RequestTimeout)
	st, err := m.Client.Status(rctx)
	cancel()
	selfService := err == nil && st.Policy.SelfServiceUnblock
	_, msg := ipc.PINBlockedAdvice(a, selfService)
	m.say(m.Conv.Error, msg)
	return Outcome{Result: AuthErr, Reason: string(ipc.CodePINBlocked)}
}

// say shows msg with show (Conv.Info or Conv.Error). A conversation that
// fails to show a message does not change the outcome.
func (m *Module) say(show func(string) error, msg string) {
	if err := show(msg); err != nil {
		m.debug("conversation: " + err.Error())
	}
}

func (m *Module) debug(msg string) {
	if m.Debug != nil {
		m.Debug(msg)
	}
}
