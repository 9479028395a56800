package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresBin is where Debian 12 installs the PostgreSQL server programs.
const PostgresBin = "/usr/lib/postgresql/15/bin"

// PG is one fresh, empty database on the shared throwaway PostgreSQL server
// of the test binary.
type PG struct {
	// Dir is the server's private directory, holding its Unix socket.
	Dir string
	// Database is the name of this test's database.
	Database string
}

// DSN returns a libpq/pgx connection string for the test's database, over
// the server's Unix socket as the superuser postgres.
func (p *PG) DSN() string {
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=%s sslmode=disable", p.Dir, p.Database)
}

// pgServer is the running server shared by the tests of one binary.
type pgServer struct {
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the server process has exited
}

var (
	pgOnce   sync.Once
	pgShared *pgServer
	pgErr    error
	pgSeq    atomic.Int64
)

// Postgres returns a fresh database on a throwaway PostgreSQL server. The
// server is started once per test binary (as the postgres OS user when the
// tests run as root), listens only on a Unix socket in a private directory,
// runs with fsync off, and is stopped and removed from Main through AtExit.
// Each call creates a new database, dropped when t ends. Missing server
// programs stop the test through Missing.
func Postgres(t testing.TB) *PG {
	t.Helper()
	RequireFiles(t, filepath.Join(PostgresBin, "initdb"), filepath.Join(PostgresBin, "postgres"))
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			Missing(t, "no postgres OS user to run the server as: %v", err)
		}
	}
	pgOnce.Do(func() {
		pgShared, pgErr = startPostgres()
		if pgErr == nil {
			AtExit(pgShared.stop)
		}
	})
	if pgErr != nil {
		t.Fatalf("start PostgreSQL: %v", pgErr)
	}
	p := &PG{Dir: pgShared.dir, Database: fmt.Sprintf("t_%d_%d", os.Getpid(), pgSeq.Add(1))}
	if err := pgShared.admin("CREATE DATABASE " + p.Database); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if err := pgShared.admin("DROP DATABASE IF EXISTS " + p.Database + " WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", p.Database, err)
		}
	})
	return p
}

// admin runs one statement on the server's postgres database.
func (s *pgServer) admin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=5432 user=postgres dbname=postgres sslmode=disable", s.dir))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// startPostgres creates a cluster in a new private directory and starts the
// server on it.
func startPostgres() (*pgServer, error) {
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hwauthd-pg-")
	if err != nil {
		return nil, err
	}
	if err := ownDir(dir, cred); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(PostgresBin, "initdb"), "-D", data, "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "-N")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Env = pgEnv()
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	s, err := runPostgres(dir, data, cred)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// postgresCredential returns the credential to run the server with: the
// postgres OS user when running as root (the server refuses root), nil
// otherwise.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// ownDir makes dir private to the server's user.
func ownDir(dir string, cred *syscall.Credential) error {
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	return os.Chmod(dir, 0o700)
}

// pgEnv is the server's environment: C messages, so readiness can be read
// from its log.
func pgEnv() []string {
	return []string{"LC_ALL=C", "LANG=C", "PATH=/usr/bin:/bin"}
}

// runPostgres starts the server in the foreground as our child and waits
// until its log says it accepts connections. The child is started from a
// goroutine locked to its thread that lives as long as the child, so the
// parent-death signal kills the server if the test binary dies without
// running AtExit.
func runPostgres(dir, data string, cred *syscall.Credential) (*pgServer, error) {
	cmd := exec.Command(filepath.Join(PostgresBin, "postgres"), "-D", data, "-k", dir, "-h", "",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "logging_collector=off")
	cmd.Env = pgEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	s := &pgServer{dir: dir, cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the child
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := waitReady(stderr, 60*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitReady reads the server's log until it reports readiness, the log ends
// (the server exited) or the deadline passes; it keeps draining the log
// afterwards so the server never blocks on it.
func waitReady(log io.Reader, timeout time.Duration) error {
	ready := make(chan error, 1)
	go func() {
		var tail []string
		sc := bufio.NewScanner(log)
		sent := false
		for sc.Scan() {
			if sent {
				continue
			}
			tail = append(tail[max(0, len(tail)-20):], sc.Text())
			if strings.Contains(sc.Text(), "database system is ready to accept connections") {
				ready <- nil
				sent = true
			}
		}
		if !sent {
			ready <- fmt.Errorf("postgres exited before it was ready:\n%s", strings.Join(tail, "\n"))
		}
	}()
	select {
	case err := <-ready:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("postgres not ready after %v", timeout)
	}
}

// stop shuts the server down at once (SIGQUIT: immediate shutdown, as
// pg_ctl stop -m immediate), waits for it and removes its directory.
func (s *pgServer) stop() {
	s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.dir)
}
