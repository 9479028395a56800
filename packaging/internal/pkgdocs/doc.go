// Package pkgdocs generates the files of the hwauthd package that describe
// the code — the default /etc/hwauthd/hwauthd.toml, the man pages
// hwauthd(8), hwauthctl(1) and hwauthd.toml(5) — from the code itself, so
// that they cannot drift from it: the configuration from config.Defaults,
// config.Keys and docs/config.md (which the config package's own test keeps
// in step with the code), the daemon's options from its flag set as the
// built binary prints it, and the CLI from the cobra command tree as the
// built hwauthctl reports it through cobra's completion protocol.
package pkgdocs
