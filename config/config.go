// Package config reads and validates hwauthd's configuration file
// (/etc/hwauthd/hwauthd.toml). Every key has a default, so an empty or missing
// file is a valid configuration; docs/config.md lists every key, and a test
// keeps that page and Defaults in step.
package config

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where hwauthd looks for its configuration file.
const DefaultPath = "/etc/hwauthd/hwauthd.toml"

// Config is the whole configuration. Field tags are the TOML keys.
type Config struct {
	Daemon Daemon `toml:"daemon"`
	Access Access `toml:"access"`
	API    API    `toml:"api"`
	PCSC   PCSC   `toml:"pcsc"`
	Store  Store  `toml:"store"`
	Policy Policy `toml:"policy"`
	SignIn SignIn `toml:"signin"`
	PKCS11 PKCS11 `toml:"pkcs11"`
	TPM    TPM    `toml:"tpm"`
	FIDO   FIDO   `toml:"fido"`
}

// Daemon holds where hwauthd listens and keeps its state.
type Daemon struct {
	// Socket is the path of the API socket when not socket-activated.
	Socket string `toml:"socket"`
	// SocketMode is the octal file mode of a socket hwauthd creates itself.
	SocketMode string `toml:"socket_mode"`
	// StateDir holds the registry and virtual-card metadata.
	StateDir string `toml:"state_dir"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `toml:"log_level"`
}

// Access names the groups whose members get more than a local user's rights.
// Root always has every right.
type Access struct {
	// AdminGroup members may do everything (provisioning, unblocking, any
	// user's registrations).
	AdminGroup string `toml:"admin_group"`
	// SignInGroup members (login managers, PAM helpers) may sign in on behalf
	// of any user and see any user's sessions.
	SignInGroup string `toml:"signin_group"`
}

// API holds limits of the socket API.
type API struct {
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// RequestTimeout bounds a request that waits for a device.
	RequestTimeout Duration `toml:"request_timeout"`
	// EventBuffer is how many events a slow watcher may fall behind before it
	// is told and dropped.
	EventBuffer int `toml:"event_buffer"`
	// EventHistory is how many past events are kept so that a watcher can
	// resume from a sequence number.
	EventHistory int `toml:"event_history"`
	// MaxConnections bounds all open connections to the socket.
	MaxConnections int `toml:"max_connections"`
	// ReservedConnections of MaxConnections only root, the sign-in group
	// and the admin group may use.
	ReservedConnections int `toml:"reserved_connections"`
	// MaxConnectionsPerUser bounds one other user's open connections.
	MaxConnectionsPerUser int `toml:"max_connections_per_user"`
	// MaxStreamsPerUser bounds one other user's open event streams.
	MaxStreamsPerUser int `toml:"max_streams_per_user"`
}

// PCSC configures smart cards in PC/SC readers.
type PCSC struct {
	// Enabled turns the PC/SC backend on.
	Enabled bool `toml:"enabled"`
}

// PKCS11 configures tokens reached through PKCS#11 modules.
type PKCS11 struct {
	// Enabled turns the PKCS#11 backend on.
	Enabled bool `toml:"enabled"`
	// Modules are the modules to load, in order; empty means OpenSC's
	// module when it is installed.
	Modules []string `toml:"modules"`
	// Helper is the path of the hwauthd-pkcs11 helper process; empty means
	// next to the hwauthd binary.
	Helper string `toml:"helper"`
	// IncludePIV also shows, through PKCS#11, cards that the native PIV path
	// serves.
	IncludePIV bool `toml:"include_piv"`
	// RequestTimeout bounds one request to the helper; a helper that takes
	// longer is killed and restarted.
	RequestTimeout Duration `toml:"request_timeout"`
}

// PIVMaxPINLength is the most a PIV VERIFY carries (SP 800-73-4: 8 bytes).
const PIVMaxPINLength = 8

// EffectiveMaxPINLength is max_pin_length, or when it is 0 (the default)
// 8 while virtual cards are presented as PIV cards and 127 (as on Windows)
// otherwise.
func (t TPM) EffectiveMaxPINLength() int {
	switch {
	case t.MaxPINLength != 0:
		return t.MaxPINLength
	case t.PresentReaders > 0:
		return PIVMaxPINLength
	}
	return 127
}

// PINClasses are the character classes of PIN rules (tpm.CharClasses).
var PINClasses = []string{"digit", "lower", "upper", "special"}

// TPM configures TPM virtual smart cards.
type TPM struct {
	// Enabled turns virtual smart cards on.
	Enabled bool `toml:"enabled"`
	// Device is the TPM's resource-manager device.
	Device string `toml:"device"`
	// Simulator, when set, is the "host:port" of a TPM simulator (swtpm)
	// used instead of Device.
	Simulator string `toml:"simulator"`
	// MaxCards is how many virtual cards this device may hold.
	MaxCards int `toml:"max_cards"`
	// PINTries and PUKTries are a new card's retry counters.
	PINTries int `toml:"pin_tries"`
	PUKTries int `toml:"puk_tries"`
	// MinPINLength and MaxPINLength bound a card's PIN and PUK, in bytes;
	// MaxPINLength 0 is EffectiveMaxPINLength's choice.
	MinPINLength int `toml:"min_pin_length"`
	MaxPINLength int `toml:"max_pin_length"`
	// PINRequiredClasses and PINForbiddenClasses are character classes
	// (digit, lower, upper, special) a PIN must contain or must not.
	PINRequiredClasses  []string `toml:"pin_required_classes"`
	PINForbiddenClasses []string `toml:"pin_forbidden_classes"`
	// RequirePUK makes a PUK mandatory when a card is created.
	RequirePUK bool `toml:"require_puk"`
	// OwnerAuthFile holds the TPM's owner authorization value, for a TPM
	// whose owner authorization IT set; empty for an empty one.
	OwnerAuthFile string `toml:"owner_auth_file"`
	// PresentReaders is how many virtual cards are presented to PC/SC
	// applications as PIV cards in hwauthd's own readers; 0 turns it off.
	PresentReaders int `toml:"present_readers"`
	// ReaderSocket is where hwauthd serves its readers to pcscd's driver.
	ReaderSocket string `toml:"reader_socket"`
	// UnpresentedCards lists virtual cards (ids) kept API-only.
	UnpresentedCards []string `toml:"unpresented_cards"`
}

// FIDO configures FIDO2 security keys.
type FIDO struct {
	// Enabled turns security keys on.
	Enabled bool `toml:"enabled"`
	// DeviceDir is watched for hidraw devices.
	DeviceDir string `toml:"device_dir"`
	// RPID is the relying party id of credentials hwauthd makes; empty
	// means "pam://" and the host name, as pam_u2f does.
	RPID string `toml:"rp_id"`
	// TouchTimeout is how long to wait for the person to touch the key.
	TouchTimeout Duration `toml:"touch_timeout"`
}

// Store chooses where registrations live.
type Store struct {
	// Backend is "bolt" (a file in the state directory) or "postgres" (a
	// registry shared by a fleet, so the limit holds across devices).
	Backend string `toml:"backend"`
	// DSN is the PostgreSQL connection string when Backend is "postgres".
	DSN string `toml:"dsn"`
}

// Policy is the organisation's rules for authenticators.
type Policy struct {
	// MaxAuthenticators is how many authenticators one user may register.
	MaxAuthenticators int `toml:"max_authenticators"`
	// AllowedKinds lists the kinds that may be registered and used.
	AllowedKinds []string `toml:"allowed_kinds"`
	// SelfService lets users register and remove their own authenticators;
	// when false only admins may.
	SelfService bool `toml:"self_service"`
	// SelfServiceUnblock lets users unblock the PIN of an authenticator
	// registered to them with its PUK; when false only admins may, and a
	// blocked PIN's advice sends the user to their administrator.
	SelfServiceUnblock bool `toml:"self_service_unblock"`
	// AllowShared lets one authenticator be registered to several users.
	AllowShared bool `toml:"allow_shared"`
	// RequireRegistration makes sign-in answer registration_required for a
	// user with no registered authenticator (the same as RequiredCount 1).
	RequireRegistration bool `toml:"require_registration"`
	// RequiredCount is how many authenticators a user must have registered
	// before they may sign in; 0 asks for none (unless RequireRegistration).
	RequiredCount int `toml:"required_count"`
	// RequiredKinds, when not empty, asks that at least one of the user's
	// registrations be of one of these kinds.
	RequiredKinds []string `toml:"required_kinds"`
}

// Missing says what a user whose registrations are of kinds (one entry per
// registration) must still register: how many more, and, when no
// registration is of a required kind, those kinds (one of them is needed).
// Both zero means the policy is met.
func (p Policy) Missing(kinds []string) (count int, oneOf []string) {
	need := p.RequiredCount
	if p.RequireRegistration {
		need = max(need, 1)
	}
	count = max(need-len(kinds), 0)
	if len(p.RequiredKinds) > 0 && !slices.ContainsFunc(kinds, func(k string) bool { return slices.Contains(p.RequiredKinds, k) }) {
		oneOf = slices.Clone(p.RequiredKinds)
		count = max(count, 1)
	}
	return count, oneOf
}

// SignIn configures sign-in sessions, certificate trust and identity mapping.
type SignIn struct {
	// SessionLifetime is how long a session lasts after sign-in.
	SessionLifetime Duration `toml:"session_lifetime"`
	// RemovalPolicy is what removing the card does to its sessions: "none",
	// "sign-out" (hwauthd's sessions end), "lock" (systemd-logind locks the
	// login sessions opened with it) or "logout" (logind terminates them).
	RemovalPolicy string `toml:"removal_policy"`
	// OpenTimeout is how long a pending session (a PAM sign-in) waits to be
	// opened by the PAM session phase before it ends.
	OpenTimeout Duration `toml:"open_timeout"`
	// CachePIN keeps the PIN in memory for the session so signing within it
	// needs no PIN.
	CachePIN bool `toml:"cache_pin"`
	// TrustAnchors is a PEM file of CA certificates; when set, a card's
	// certificate must chain to one of them.
	TrustAnchors string `toml:"trust_anchors"`
	// CRLFiles are certificate revocation lists (DER or PEM) checked with
	// the trust anchors.
	CRLFiles []string `toml:"crl_files"`
	// Mapping lists the rules that map a certificate to the local account,
	// tried in order: "link", "upn", "email", "cn". Empty: registration
	// alone binds a card to its user.
	Mapping []string `toml:"mapping"`
	// MaxFailures is how many failed attempts one authenticator may have
	// for one user within FailureWindow before further attempts are
	// refused, unless the device's own counter answers first.
	MaxFailures int `toml:"max_failures"`
	// FailureWindow is the period over which failures are counted.
	FailureWindow Duration `toml:"failure_window"`
}

// RemovalPolicies are the values of SignIn.RemovalPolicy.
var RemovalPolicies = []string{"none", "sign-out", "lock", "logout"}

// MappingRules are the identity mapping rules SignIn.Mapping may name.
var MappingRules = []string{"link", "upn", "email", "cn"}

// Authenticator kinds, as the API names them.
var Kinds = []string{"smartcard", "virtual-smartcard", "security-key"}

// KindAllowed reports whether policy allows kind.
func (p Policy) KindAllowed(kind string) bool { return slices.Contains(p.AllowedKinds, kind) }

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration struct{ time.Duration }

// UnmarshalText parses a duration such as "30s" or "2m".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (use e.g. \"30s\"): %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a short Go duration string ("8h", not
// "8h0m0s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String is the duration without trailing zero units ("8h", "5m", "1h30m").
func (d Duration) String() string {
	s := d.Duration.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// Defaults returns the configuration used for every key the file leaves out.
func Defaults() Config {
	return Config{
		Daemon: Daemon{
			Socket:     "/run/hwauthd/hwauthd.sock",
			SocketMode: "0666",
			StateDir:   "/var/lib/hwauthd",
			LogLevel:   "info",
		},
		Access: Access{
			AdminGroup:  "hwauth-admin",
			SignInGroup: "hwauth-signin",
		},
		API: API{
			MaxBodyBytes:          64 << 10,
			RequestTimeout:        Duration{30 * time.Second},
			EventBuffer:           256,
			EventHistory:          1024,
			MaxConnections:        512,
			ReservedConnections:   64,
			MaxConnectionsPerUser: 32,
			MaxStreamsPerUser:     8,
		},
		PCSC:  PCSC{Enabled: true},
		Store: Store{Backend: "bolt"},
		TPM: TPM{
			Enabled:        true,
			Device:         "/dev/tpmrm0",
			MaxCards:       10,
			PINTries:       5,
			PUKTries:       5,
			MinPINLength:   8,
			PresentReaders: 10,
			ReaderSocket:   "/run/hwauthd/readers.sock",
			// Empty, not nil: what the shipped file's "= []" decodes to.
			PINRequiredClasses:  []string{},
			PINForbiddenClasses: []string{},
			UnpresentedCards:    []string{},
		},
		FIDO: FIDO{
			Enabled:      true,
			DeviceDir:    "/dev",
			TouchTimeout: Duration{30 * time.Second},
		},
		PKCS11: PKCS11{
			Enabled:        true,
			Modules:        []string{},
			RequestTimeout: Duration{30 * time.Second},
		},
		Policy: Policy{
			MaxAuthenticators: 5,
			AllowedKinds:      slices.Clone(Kinds),
			SelfService:       true,
			RequiredKinds:     []string{},
		},
		SignIn: SignIn{
			SessionLifetime: Duration{8 * time.Hour},
			RemovalPolicy:   "none",
			OpenTimeout:     Duration{time.Minute},
			CRLFiles:        []string{},
			Mapping:         []string{},
			MaxFailures:     5,
			FailureWindow:   Duration{5 * time.Minute},
		},
	}
}

// Load reads path over the defaults and validates the result. A missing file
// at the default path is not an error; a missing file named explicitly is.
func Load(path string, explicit bool) (Config, error) {
	cfg := Defaults()
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && !explicit:
		return cfg, cfg.Validate()
	case err != nil:
		return cfg, fmt.Errorf("read config: %w", err)
	}
	if err := Parse(b, &cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes TOML text over cfg, refuses unknown keys and validates.
func Parse(text []byte, cfg *Config) error {
	md, err := toml.Decode(string(text), cfg)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("unknown key(s): %s (see hwauthd.toml(5))", strings.Join(keys, ", "))
	}
	return cfg.Validate()
}

// Validate checks every value and reports each problem on its own line.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if !filepath.IsAbs(c.Daemon.Socket) {
		bad("daemon.socket", "must be an absolute path, got %q", c.Daemon.Socket)
	}
	if _, err := c.SocketFileMode(); err != nil {
		bad("daemon.socket_mode", "%v", err)
	}
	if !filepath.IsAbs(c.Daemon.StateDir) {
		bad("daemon.state_dir", "must be an absolute path, got %q", c.Daemon.StateDir)
	}
	switch c.Daemon.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("daemon.log_level", "must be debug, info, warn or error, got %q", c.Daemon.LogLevel)
	}
	if c.API.MaxBodyBytes < 1024 || c.API.MaxBodyBytes > 16<<20 {
		bad("api.max_body_bytes", "must be between 1024 and 16777216, got %d", c.API.MaxBodyBytes)
	}
	if c.API.RequestTimeout.Duration < time.Second || c.API.RequestTimeout.Duration > 10*time.Minute {
		bad("api.request_timeout", "must be between 1s and 10m, got %s", c.API.RequestTimeout)
	}
	if c.API.EventBuffer < 8 || c.API.EventBuffer > 1<<16 {
		bad("api.event_buffer", "must be between 8 and 65536, got %d", c.API.EventBuffer)
	}
	if c.API.EventHistory < 0 || c.API.EventHistory > 1<<20 {
		bad("api.event_history", "must be between 0 and 1048576, got %d", c.API.EventHistory)
	}
	if c.API.MaxConnections < 16 || c.API.MaxConnections > 1<<16 {
		bad("api.max_connections", "must be between 16 and 65536, got %d", c.API.MaxConnections)
	}
	if c.API.ReservedConnections < 1 || c.API.ReservedConnections >= c.API.MaxConnections {
		bad("api.reserved_connections", "must be at least 1 and less than api.max_connections (%d), got %d", c.API.MaxConnections, c.API.ReservedConnections)
	}
	if c.API.MaxConnectionsPerUser < 2 || c.API.MaxConnectionsPerUser > c.API.MaxConnections {
		bad("api.max_connections_per_user", "must be between 2 and api.max_connections (%d), got %d", c.API.MaxConnections, c.API.MaxConnectionsPerUser)
	}
	if c.API.MaxStreamsPerUser < 1 || c.API.MaxStreamsPerUser >= c.API.MaxConnectionsPerUser {
		bad("api.max_streams_per_user", "must be at least 1 and less than api.max_connections_per_user (%d), got %d", c.API.MaxConnectionsPerUser, c.API.MaxStreamsPerUser)
	}
	switch c.Store.Backend {
	case "bolt":
	case "postgres":
		if c.Store.DSN == "" {
			bad("store.dsn", "is required when store.backend is \"postgres\"")
		}
	default:
		bad("store.backend", "must be \"bolt\" or \"postgres\", got %q", c.Store.Backend)
	}
	if c.Policy.MaxAuthenticators < 1 || c.Policy.MaxAuthenticators > 100 {
		bad("policy.max_authenticators", "must be between 1 and 100, got %d", c.Policy.MaxAuthenticators)
	}
	for _, k := range c.Policy.AllowedKinds {
		if !slices.Contains(Kinds, k) {
			bad("policy.allowed_kinds", "unknown kind %q (kinds: %s)", k, strings.Join(Kinds, ", "))
		}
	}
	if c.Policy.RequiredCount < 0 || c.Policy.RequiredCount > c.Policy.MaxAuthenticators {
		bad("policy.required_count", "must be between 0 and policy.max_authenticators (%d), got %d", c.Policy.MaxAuthenticators, c.Policy.RequiredCount)
	}
	for _, k := range c.Policy.RequiredKinds {
		if !slices.Contains(c.Policy.AllowedKinds, k) {
			bad("policy.required_kinds", "kind %q is not in policy.allowed_kinds (%s)", k, strings.Join(c.Policy.AllowedKinds, ", "))
		}
	}
	if !filepath.IsAbs(c.TPM.Device) {
		bad("tpm.device", "must be an absolute path, got %q", c.TPM.Device)
	}
	if c.TPM.MaxCards < 1 || c.TPM.MaxCards > 100 {
		bad("tpm.max_cards", "must be between 1 and 100, got %d", c.TPM.MaxCards)
	}
	if c.TPM.PresentReaders < 0 || c.TPM.PresentReaders > 10 {
		bad("tpm.present_readers", "must be between 0 and 10 (the readers /etc/reader.conf.d/hwauthd gives pcscd), got %d", c.TPM.PresentReaders)
	}
	if !filepath.IsAbs(c.TPM.ReaderSocket) {
		bad("tpm.reader_socket", "must be an absolute path, got %q", c.TPM.ReaderSocket)
	}
	if c.TPM.PINTries < 1 || c.TPM.PINTries > 15 {
		bad("tpm.pin_tries", "must be between 1 and 15, got %d", c.TPM.PINTries)
	}
	if c.TPM.PUKTries < 1 || c.TPM.PUKTries > 15 {
		bad("tpm.puk_tries", "must be between 1 and 15, got %d", c.TPM.PUKTries)
	}
	if c.TPM.MinPINLength < 4 || c.TPM.MinPINLength > 127 {
		bad("tpm.min_pin_length", "must be between 4 and 127, got %d", c.TPM.MinPINLength)
	}
	switch maxPIN := c.TPM.EffectiveMaxPINLength(); {
	case maxPIN < c.TPM.MinPINLength || maxPIN > 127:
		bad("tpm.max_pin_length", "must be between min_pin_length (%d) and 127, got %d", c.TPM.MinPINLength, maxPIN)
	case c.TPM.PresentReaders > 0 && maxPIN > PIVMaxPINLength:
		bad("tpm.max_pin_length", "must be at most %d while virtual cards are presented as PIV cards (present_readers > 0): a PIV VERIFY carries %d bytes", PIVMaxPINLength, PIVMaxPINLength)
	}
	for _, k := range append(slices.Clone(c.TPM.PINRequiredClasses), c.TPM.PINForbiddenClasses...) {
		if !slices.Contains(PINClasses, k) {
			bad("tpm.pin_required_classes", "unknown character class %q (classes: %s)", k, strings.Join(PINClasses, ", "))
		}
	}
	for _, k := range c.TPM.PINRequiredClasses {
		if slices.Contains(c.TPM.PINForbiddenClasses, k) {
			bad("tpm.pin_forbidden_classes", "character class %q is also required", k)
		}
	}
	if c.TPM.OwnerAuthFile != "" && !filepath.IsAbs(c.TPM.OwnerAuthFile) {
		bad("tpm.owner_auth_file", "must be an absolute path, got %q", c.TPM.OwnerAuthFile)
	}
	if !filepath.IsAbs(c.FIDO.DeviceDir) {
		bad("fido.device_dir", "must be an absolute path, got %q", c.FIDO.DeviceDir)
	}
	if c.FIDO.TouchTimeout.Duration < time.Second || c.FIDO.TouchTimeout.Duration > 10*time.Minute {
		bad("fido.touch_timeout", "must be between 1s and 10m, got %s", c.FIDO.TouchTimeout)
	}
	for _, m := range c.PKCS11.Modules {
		if !filepath.IsAbs(m) {
			bad("pkcs11.modules", "must be absolute paths, got %q", m)
		}
	}
	if c.PKCS11.Helper != "" && !filepath.IsAbs(c.PKCS11.Helper) {
		bad("pkcs11.helper", "must be an absolute path, got %q", c.PKCS11.Helper)
	}
	if c.PKCS11.RequestTimeout.Duration < time.Second || c.PKCS11.RequestTimeout.Duration > 10*time.Minute {
		bad("pkcs11.request_timeout", "must be between 1s and 10m, got %s", c.PKCS11.RequestTimeout)
	}
	if c.SignIn.SessionLifetime.Duration < time.Minute || c.SignIn.SessionLifetime.Duration > 30*24*time.Hour {
		bad("signin.session_lifetime", "must be between 1m and 720h, got %s", c.SignIn.SessionLifetime)
	}
	if !slices.Contains(RemovalPolicies, c.SignIn.RemovalPolicy) {
		bad("signin.removal_policy", "must be \"none\", \"sign-out\", \"lock\" or \"logout\", got %q", c.SignIn.RemovalPolicy)
	}
	if c.SignIn.OpenTimeout.Duration < time.Second || c.SignIn.OpenTimeout.Duration > 10*time.Minute {
		bad("signin.open_timeout", "must be between 1s and 10m, got %s", c.SignIn.OpenTimeout)
	}
	if c.SignIn.TrustAnchors != "" && !filepath.IsAbs(c.SignIn.TrustAnchors) {
		bad("signin.trust_anchors", "must be an absolute path, got %q", c.SignIn.TrustAnchors)
	}
	for _, f := range c.SignIn.CRLFiles {
		if !filepath.IsAbs(f) {
			bad("signin.crl_files", "must be absolute paths, got %q", f)
		}
	}
	if len(c.SignIn.CRLFiles) > 0 && c.SignIn.TrustAnchors == "" {
		bad("signin.crl_files", "need signin.trust_anchors (revocation is checked along the chain)")
	}
	for _, m := range c.SignIn.Mapping {
		if !slices.Contains(MappingRules, m) {
			bad("signin.mapping", "unknown rule %q (rules: %s)", m, strings.Join(MappingRules, ", "))
		}
	}
	if c.SignIn.MaxFailures < 1 || c.SignIn.MaxFailures > 1000 {
		bad("signin.max_failures", "must be between 1 and 1000, got %d", c.SignIn.MaxFailures)
	}
	if c.SignIn.FailureWindow.Duration < time.Second || c.SignIn.FailureWindow.Duration > 24*time.Hour {
		bad("signin.failure_window", "must be between 1s and 24h, got %s", c.SignIn.FailureWindow)
	}
	return errors.Join(errs...)
}

// SocketFileMode parses Daemon.SocketMode.
func (c Config) SocketFileMode() (os.FileMode, error) {
	m, err := strconv.ParseUint(c.Daemon.SocketMode, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("must be an octal file mode such as \"0666\", got %q", c.Daemon.SocketMode)
	}
	return os.FileMode(m), nil
}

// RelyingParty returns the FIDO2 relying party id: fido.rp_id, or
// "pam://" and the host name.
func (c Config) RelyingParty() string {
	if c.FIDO.RPID != "" {
		return c.FIDO.RPID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return "pam://" + host
}

// GroupID resolves a group name from the configuration to its gid. An empty
// name resolves to ok=false; a name that does not exist is not an error
// either (the group may be created later) but is reported through ok=false so
// the daemon can log it.
func GroupID(name string) (gid uint32, ok bool) {
	if name == "" {
		return 0, false
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, false
	}
	id, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(id), true
}

// Keys lists every key as "section.key", in file order. The man page and the
// configuration reference are checked against it.
func Keys() []string {
	var keys []string
	top := reflect.TypeOf(Config{})
	for i := range top.NumField() {
		sec := top.Field(i)
		for j := range sec.Type.NumField() {
			keys = append(keys, sec.Tag.Get("toml")+"."+sec.Type.Field(j).Tag.Get("toml"))
		}
	}
	return keys
}
