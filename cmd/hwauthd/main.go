// Command hwauthd is the hardware authentication daemon: it serves smart
// cards, TPM virtual smart cards and FIDO2 keys to sign-in clients over a
// Unix-socket API. See hwauthd(8) and docs/.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hwauthd/hwauthd/cmd/hwauthd/builtins"
	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon"
	"github.com/hwauthd/hwauthd/ipc/server"
	"github.com/hwauthd/hwauthd/store"
	"github.com/hwauthd/hwauthd/store/boltstore"
	"github.com/hwauthd/hwauthd/store/pgstore"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hwauthd:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		configPath  = flag.String("config", config.DefaultPath, "configuration `file`")
		socketPath  = flag.String("socket", "", "API socket `path` (overrides daemon.socket and $HWAUTHD_SOCKET)")
		stateDir    = flag.String("state-dir", "", "state `directory` (overrides daemon.state_dir)")
		showVersion = flag.Bool("version", false, "print the version and exit")
	)
	flag.Parse()
	if *showVersion {
		fmt.Println("hwauthd", version)
		return nil
	}
	cfg, err := loadConfig(*configPath, *socketPath, *stateDir)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Daemon.LogLevel)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	ln, err := listen(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Daemon.StateDir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}

	reg, state, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()

	set := builtins.Build(cfg, log, reg, state)
	for _, name := range set.Missing {
		log.Warn("backend enabled in the configuration but not built into this hwauthd", "backend", name)
	}
	d, err := daemon.New(daemon.Options{
		Config:       cfg,
		Logger:       log,
		Backends:     set.Backends,
		VirtualCards: set.VirtualCards,
		Version:      version,
		Store:        reg,
	})
	if err != nil {
		return err
	}
	return d.Run(ctx, ln)
}

// loadConfig reads the file and applies the command line and environment,
// which win over the file.
func loadConfig(path, socket, stateDir string) (config.Config, error) {
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	cfg, err := config.Load(path, explicit)
	if err != nil {
		return cfg, err
	}
	if env := os.Getenv("HWAUTHD_SOCKET"); env != "" {
		cfg.Daemon.Socket = env
	}
	if socket != "" {
		cfg.Daemon.Socket = socket
	}
	if stateDir != "" {
		cfg.Daemon.StateDir = stateDir
	}
	return cfg, cfg.Validate()
}

// listen takes the socket from systemd when socket-activated, else creates
// it (refusing one a live daemon owns, replacing a stale file).
func listen(cfg config.Config) (net.Listener, error) {
	ln, activated, err := server.ActivationListener()
	if err != nil || activated {
		return ln, err
	}
	mode, err := cfg.SocketFileMode()
	if err != nil {
		return nil, err
	}
	return server.Listen(cfg.Daemon.Socket, mode)
}

// openStore opens the registry (the bbolt file in the state directory, or
// PostgreSQL for a fleet) and the device-local state, which is always the
// bbolt file. A corrupt file is reported, never replaced.
func openStore(ctx context.Context, cfg config.Config) (store.Store, store.DeviceState, func(), error) {
	path := filepath.Join(cfg.Daemon.StateDir, "hwauthd.db")
	local, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("state: %w", err)
	}
	if cfg.Store.Backend != "postgres" {
		return local, local, func() { local.Close() }, nil
	}
	pg, err := pgstore.Open(ctx, cfg.Store.DSN)
	if err != nil {
		local.Close()
		return nil, nil, nil, fmt.Errorf("registry (PostgreSQL): %w", err)
	}
	return pg, local, func() { pg.Close(); local.Close() }, nil
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
