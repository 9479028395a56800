// Package logind asks systemd-logind, over the D-Bus system bus, to lock or
// terminate a login session, for the smart-card removal policy. Every call
// waits for logind's reply and returns its error: a refusal (polkit denied
// the hwauthd user, no such session) is never silent, unlike go-systemd's
// login1 package, which discards the replies of LockSession and
// TerminateSession.
//
// The bus is the system bus, or DBUS_SYSTEM_BUS_ADDRESS when set (tests use
// a private dbus-daemon with python3-dbusmock's logind template).
package logind

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/godbus/dbus/v5"
)

const (
	dest        = "org.freedesktop.login1"
	managerPath = dbus.ObjectPath("/org/freedesktop/login1")
	manager     = "org.freedesktop.login1.Manager"
	sessionIfc  = "org.freedesktop.login1.Session"
)

// ErrNotOwner means the login session belongs to another user than the one
// it was named for: hwauthd never locks or ends someone else's session.
var ErrNotOwner = errors.New("the login session belongs to another user")

// Target names a login session: by id (XDG_SESSION_ID), or by a process in
// it; UID is the user it must belong to.
type Target struct {
	ID  string
	PID int
	UID uint32
}

// Client talks to logind. It connects on first use and again after the bus
// connection is lost. Its methods are safe for concurrent use.
type Client struct {
	mu   sync.Mutex
	conn *dbus.Conn
}

// New returns a client that has not connected yet.
func New() *Client { return &Client{} }

// Close drops the bus connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

// bus returns the connection, connecting when there is none or it closed.
func (c *Client) bus() (*dbus.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && c.conn.Connected() {
		return c.conn, nil
	}
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return nil, fmt.Errorf("logind: connect to the system bus: %w", err)
	}
	c.conn = conn
	return conn, nil
}

// Lock asks logind to lock the session (Manager.LockSession): the screen
// locker of that session comes up. It returns the session's id.
func (c *Client) Lock(ctx context.Context, t Target) (string, error) {
	return c.act(ctx, t, "LockSession")
}

// Terminate asks logind to end the session (Manager.TerminateSession): its
// processes are stopped. It returns the session's id.
func (c *Client) Terminate(ctx context.Context, t Target) (string, error) {
	return c.act(ctx, t, "TerminateSession")
}

// act resolves t, checks its owner and calls method with its id.
func (c *Client) act(ctx context.Context, t Target, method string) (string, error) {
	conn, err := c.bus()
	if err != nil {
		return "", err
	}
	path, err := c.sessionPath(ctx, conn, t)
	if err != nil {
		return "", err
	}
	obj := conn.Object(dest, path)
	id, err := obj.GetProperty(sessionIfc + ".Id")
	if err != nil {
		return "", fmt.Errorf("logind: session %s: %w", path, err)
	}
	owner, err := obj.GetProperty(sessionIfc + ".User")
	if err != nil {
		return "", fmt.Errorf("logind: session %s: %w", path, err)
	}
	sid, _ := id.Value().(string)
	if uid, ok := sessionUID(owner); !ok || uid != t.UID {
		return sid, fmt.Errorf("logind: session %s: %w", sid, ErrNotOwner)
	}
	if call := conn.Object(dest, managerPath).CallWithContext(ctx, manager+"."+method, 0, sid); call.Err != nil {
		return sid, fmt.Errorf("logind: %s %s: %w", method, sid, call.Err)
	}
	return sid, nil
}

// sessionPath finds the session object of t.
func (c *Client) sessionPath(ctx context.Context, conn *dbus.Conn, t Target) (dbus.ObjectPath, error) {
	var path dbus.ObjectPath
	m := conn.Object(dest, managerPath)
	var err error
	switch {
	case t.ID != "":
		err = m.CallWithContext(ctx, manager+".GetSession", 0, t.ID).Store(&path)
	case t.PID > 0:
		err = m.CallWithContext(ctx, manager+".GetSessionByPID", 0, uint32(t.PID)).Store(&path)
	default:
		return "", errors.New("logind: no login session is known for this sign-in")
	}
	if err != nil {
		return "", fmt.Errorf("logind: find the login session (id %q, pid %d): %w", t.ID, t.PID, err)
	}
	return path, nil
}

// sessionUID reads the uid out of a Session.User property, (uo).
func sessionUID(v dbus.Variant) (uint32, bool) {
	fields, ok := v.Value().([]any)
	if !ok || len(fields) < 1 {
		return 0, false
	}
	uid, ok := fields[0].(uint32)
	return uid, ok
}
