package daemon

import (
	"log/slog"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// Access holds the access checkers the routes declare, built from the
// configured groups. Root always passes; a group that does not exist on the
// machine grants nothing.
type Access struct {
	// Anyone is any local user whose peer credentials could be read.
	Anyone server.Access
	// Admin is root and the admin group.
	Admin server.Access
	// SignIn may sign in on behalf of others: root, the admin group and the
	// sign-in group.
	SignIn server.Access
}

// NewAccess resolves the configured group names.
func NewAccess(cfg config.Access, log *slog.Logger) Access {
	group := func(key, name string) server.Access {
		gid, ok := config.GroupID(name)
		if !ok {
			if name != "" {
				log.Warn("configured group does not exist; it grants nothing", "key", key, "group", name)
			}
			return server.Deny
		}
		return server.InGroup(gid)
	}
	admin := group("access.admin_group", cfg.AdminGroup)
	return Access{
		Anyone: server.Anyone,
		Admin:  server.AnyOf(server.Root, admin),
		SignIn: server.AnyOf(server.Root, admin, group("access.signin_group", cfg.SignInGroup)),
	}
}
