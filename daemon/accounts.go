package daemon

import (
	"os/user"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/internal/passwd"
	"github.com/hwauthd/hwauthd/ipc"
)

// Accounts is the machine's account database as the daemon sees it: peers
// arrive as uids, routes name users, and the configuration names groups.
type Accounts interface {
	// UserName returns the login name of uid; ok is false when the
	// database does not know it.
	UserName(uid uint32) (name string, ok bool)
	// UserExists reports whether an account has the login name.
	UserExists(name string) bool
	// UserID returns the uid of the account name; ok is false when the
	// database does not know it.
	UserID(name string) (uid uint32, ok bool)
	// GroupID resolves a group name; ok is false for an unknown group.
	GroupID(name string) (gid uint32, ok bool)
}

// SystemAccounts reads the accounts through NSS (os/user), and straight
// from /etc/passwd where NSS would answer from that file first (package
// internal/passwd checks that, and that the file is unchanged, on every
// lookup). The zero value asks NSS every time.
type SystemAccounts struct {
	files *passwd.Files
}

// NewSystemAccounts reads the machine's accounts.
func NewSystemAccounts() SystemAccounts { return SystemAccounts{files: passwd.System()} }

// UserName looks uid up.
func (a SystemAccounts) UserName(uid uint32) (string, bool) {
	if a.files != nil {
		if name, ok := a.files.Name(uid); ok {
			return name, true
		}
	}
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return "", false
	}
	return u.Username, true
}

// UserExists looks name up.
func (a SystemAccounts) UserExists(name string) bool {
	if a.files != nil {
		if _, ok := a.files.UID(name); ok {
			return true
		}
	}
	_, err := user.Lookup(name)
	return err == nil
}

// UserID looks name up.
func (a SystemAccounts) UserID(name string) (uint32, bool) {
	if a.files != nil {
		if uid, ok := a.files.UID(name); ok {
			return uid, true
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, false
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	return uint32(uid), err == nil
}

// GroupID looks a group name up.
func (SystemAccounts) GroupID(name string) (uint32, bool) { return config.GroupID(name) }

// userName returns the login name of uid, or "uid:N" when the account
// database does not know it.
func (d *Daemon) userName(uid uint32) string {
	if name, ok := d.accounts.UserName(uid); ok {
		return name
	}
	return "uid:" + strconv.FormatUint(uint64(uid), 10)
}

// validName refuses a user name, label or other name from a request that
// holds a NUL byte, another control character or invalid UTF-8: the C
// account lookup would stop at a NUL and answer for a shorter name, and such
// names have no business in logs or the registry.
func validName(field, name string) error {
	if !utf8.ValidString(name) {
		return ipc.Errorf(ipc.CodeBadRequest, "%s is not valid UTF-8", field)
	}
	for _, c := range name {
		if unicode.IsControl(c) {
			return ipc.Errorf(ipc.CodeBadRequest, "%s holds a control character (%U); remove it", field, c)
		}
	}
	return nil
}

// account validates a user name from a request and checks that the account
// exists on this machine. Access rules run first, so only a caller allowed
// to act on the name learns whether it exists.
func (d *Daemon) account(name string) (string, error) {
	if name == "" {
		return "", ipc.Errorf(ipc.CodeBadRequest, "user is required")
	}
	if err := validName("user", name); err != nil {
		return "", err
	}
	if !d.accounts.UserExists(name) {
		return "", ipc.Errorf(ipc.CodeNotFound, "no account %q on this machine", name)
	}
	return name, nil
}
