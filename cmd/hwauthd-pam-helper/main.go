// Command hwauthd-pam-helper does the work of the PAM module pam_hwauth.so,
// outside the process that loaded the module: the module starts it for each
// PAM call with a socket on file descriptor 3 and relays the application's
// conversation, syslog and session data for it (package pam/relay). The
// sign-in itself is package pam/signin.
//
// It is not meant to be run by hand; the module runs it from
// /usr/libexec/hwauthd/hwauthd-pam-helper.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/client"
	"github.com/hwauthd/hwauthd/pam/relay"
	"github.com/hwauthd/hwauthd/pam/signin"
	"golang.org/x/sys/unix"
)

// slack is added to the helper's own timeouts when it tells the module how
// long it may stay silent, so that the helper's timeouts fire first and the
// module's only catches a helper that hangs.
const slack = 5 * time.Second

func main() {
	// The PIN passes through this process: no core dumps, no ptrace by
	// other processes of the user.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	f := os.NewFile(relay.ChannelFD, "pam_hwauth")
	if f == nil {
		fmt.Fprintln(os.Stderr, "hwauthd-pam-helper: run by pam_hwauth.so only (no socket on fd 3)")
		os.Exit(2)
	}
	c := relay.New(f)
	st, err := c.ReadStart()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hwauthd-pam-helper:", err)
		os.Exit(2)
	}
	var res signin.Result
	switch st.Op {
	case "authenticate":
		res = authenticate(c, st)
	case "open_session":
		res = openSession(c, st)
	case "close_session":
		res = closeSession(c, st)
	default:
		c.Log(relay.LogErr, "unknown operation "+st.Op)
		res = signin.ServiceErr
	}
	if err := c.Done(res); err != nil {
		os.Exit(1)
	}
}

// options parses the module arguments; a bad one is logged and fails the
// call with PAM_SERVICE_ERR.
func options(c *relay.Conn, st relay.Start) (signin.Options, bool) {
	opts, err := signin.ParseArgs(st.Args)
	if err != nil {
		c.Log(relay.LogErr, "bad configuration: "+err.Error())
		return opts, false
	}
	return opts, true
}

// authenticate signs st.User in with a card or key (pam_sm_authenticate).
func authenticate(c *relay.Conn, st relay.Start) signin.Result {
	opts, ok := options(c, st)
	if !ok {
		return signin.ServiceErr
	}
	// Between two frames the helper makes at most two requests or waits
	// for an insertion, each bounded by the options' timeouts.
	c.AllowSilence(2*opts.RequestTimeout + opts.InsertTimeout + slack)
	debug := func(string) {}
	if opts.Debug {
		debug = func(msg string) { c.Log(relay.LogDebug, msg) }
	}
	m := &signin.Module{Client: client.New(opts.Socket), Conv: c, Opts: opts, Debug: debug}
	out := m.Authenticate(context.Background(), st.User)
	if out.Result == signin.Success && out.Session != nil {
		if err := c.KeepSession(out.Session.ID); err != nil {
			c.Log(relay.LogWarning, "cannot keep the hwauthd session for sign-out")
		}
	}
	prio := relay.LogNotice
	if out.Result == signin.Success {
		prio = relay.LogInfo
	}
	c.Log(prio, fmt.Sprintf("user %s: %s (%s) authenticator=%s", st.User, out.Result, out.Reason, out.Authenticator))
	return out.Result
}

// openSession opens the hwauthd session that authenticate kept, which is
// pending until then (pam_sm_open_session), and records the login session
// it belongs to: XDG_SESSION_ID when pam_systemd ran before the module, and
// always the PAM application's pid (the helper's parent), since the
// pam-auth-update stack runs pam_systemd last; hwauthd asks logind for that
// process's session when the removal policy needs it.
func openSession(c *relay.Conn, st relay.Start) signin.Result {
	return sessionCall(c, st, "opened", func(ctx context.Context, hw *client.Client) error {
		_, err := hw.OpenSession(ctx, st.Session, ipc.OpenSessionRequest{LoginSession: st.LoginSession, PID: os.Getppid()})
		return err
	})
}

// closeSession signs out of the hwauthd session that authenticate kept
// (pam_sm_close_session); one that already ended is fine.
func closeSession(c *relay.Conn, st relay.Start) signin.Result {
	return sessionCall(c, st, "signed out of", func(ctx context.Context, hw *client.Client) error {
		if err := hw.SignOut(ctx, st.Session); !client.IsCode(err, ipc.CodeNotFound) {
			return err
		}
		return nil
	})
}

// sessionCall makes one request about the kept session within the request
// timeout and logs how it went ("<done> hwauthd session ID").
func sessionCall(c *relay.Conn, st relay.Start, done string, call func(context.Context, *client.Client) error) signin.Result {
	opts, ok := options(c, st)
	if !ok {
		return signin.ServiceErr
	}
	c.AllowSilence(opts.RequestTimeout + slack)
	ctx, cancel := context.WithTimeout(context.Background(), opts.RequestTimeout)
	defer cancel()
	if err := call(ctx, client.New(opts.Socket)); err != nil {
		c.Log(relay.LogWarning, "hwauthd session "+st.Session+" not "+done+": "+err.Error())
		return signin.SessionErr
	}
	c.Log(relay.LogInfo, done+" hwauthd session "+st.Session)
	return signin.Success
}
