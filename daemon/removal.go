package daemon

import (
	"encoding/json"

	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/ipc"
)

// authenticatorGone forgets that a removed authenticator's PIN was
// announced as blocked and applies the removal policy to the sessions
// opened with it (signin.Removal).
func (d *Daemon) authenticatorGone(id string) {
	d.signIn.PINBlocks.Forget(id)
	d.removal.AuthenticatorGone(id)
}

// sessionLocked announces that the removal policy locked the login session
// of s (session-locked).
func (d *Daemon) sessionLocked(s signin.Session, loginSession string) {
	data, _ := json.Marshal(map[string]string{"login_session": loginSession})
	d.manager.Publish(ipc.Event{Type: ipc.EventSessionLocked, User: s.User, Session: s.ID, Authenticator: s.Authenticator, Data: data})
}

// removalFailed announces that logind refused the removal policy's action
// on the login session of s (removal-failed).
func (d *Daemon) removalFailed(s signin.Session, action, loginSession string, err error) {
	data, _ := json.Marshal(map[string]string{"action": action, "login_session": loginSession})
	d.manager.Publish(ipc.Event{Type: ipc.EventRemovalFailed, User: s.User, Session: s.ID, Authenticator: s.Authenticator, Reason: err.Error(), Data: data})
}
