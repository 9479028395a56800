package daemontest

import (
	"sync"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// Accounts is a fake account database (daemon.Accounts): root, the groups
// the configuration names, and users added as tests need them. Users get
// uids from 1000 up and a primary group of their own.
type Accounts struct {
	mu      sync.Mutex
	users   map[string]server.Peer
	byUID   map[uint32]string
	groups  map[string]uint32
	nextUID uint32
}

// NewAccounts returns a database with root and the groups cfg names.
func NewAccounts(cfg config.Access) *Accounts {
	a := &Accounts{users: map[string]server.Peer{}, byUID: map[uint32]string{}, groups: map[string]uint32{}, nextUID: 1000}
	a.users["root"] = server.Peer{UID: 0, GID: 0}
	a.byUID[0] = "root"
	gid := uint32(900)
	for _, g := range []string{cfg.AdminGroup, cfg.SignInGroup} {
		if g != "" {
			a.groups[g] = gid
			gid++
		}
	}
	return a
}

// Add creates user in the named groups (which must exist) and returns the
// identity its connections carry; an existing user is returned as it is.
func (a *Accounts) Add(user string, groups ...string) server.Peer {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.users[user]; ok {
		return p
	}
	uid := a.nextUID
	a.nextUID++
	p := server.Peer{UID: uid, GID: uid, PID: int32(uid)}
	for _, g := range groups {
		gid, ok := a.groups[g]
		if !ok {
			panic("daemontest: no group " + g)
		}
		p.Groups = append(p.Groups, gid)
	}
	a.users[user] = p
	a.byUID[uid] = user
	return p
}

// peer returns user's identity, adding the user when missing.
func (a *Accounts) peer(user string) server.Peer { return a.Add(user) }

// UserName implements daemon.Accounts.
func (a *Accounts) UserName(uid uint32) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.byUID[uid]
	return n, ok
}

// UserExists implements daemon.Accounts.
func (a *Accounts) UserExists(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.users[name]
	return ok
}

// UserID implements daemon.Accounts.
func (a *Accounts) UserID(name string) (uint32, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.users[name]
	return p.UID, ok
}

// Recreate deletes user and creates an account of the same name with a new
// uid, as an administrator who deletes an account and adds another.
func (a *Accounts) Recreate(user string) server.Peer {
	a.mu.Lock()
	if p, ok := a.users[user]; ok {
		delete(a.byUID, p.UID)
		delete(a.users, user)
	}
	a.mu.Unlock()
	return a.Add(user)
}

// GroupID implements daemon.Accounts.
func (a *Accounts) GroupID(name string) (uint32, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, ok := a.groups[name]
	return g, ok
}
