package testenv

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestPostgresFreshPrivateDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := Postgres(t), Postgres(t)
	if a.Database == b.Database {
		t.Fatalf("two calls gave the same database %s", a.Database)
	}
	ca, err := pgx.Connect(ctx, a.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE x (v int)"); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'").Scan(&n); err != nil || n != 0 {
		t.Errorf("table of database a visible in b: count %d, %v", n, err)
	}
	var listen string
	if err := cb.QueryRow(ctx, "SHOW listen_addresses").Scan(&listen); err != nil || listen != "" {
		t.Errorf("listen_addresses = %q, %v; want none (Unix socket only)", listen, err)
	}
	fi, err := os.Stat(a.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("server directory mode %v, want 0700", fi.Mode().Perm())
	}
	if os.Geteuid() == 0 && fi.Sys().(*syscall.Stat_t).Uid == 0 {
		t.Errorf("server directory owned by root, want the postgres user")
	}
}

func TestPostgresDatabaseDroppedAtCleanup(t *testing.T) {
	var name, dir string
	t.Run("inner", func(t *testing.T) {
		p := Postgres(t)
		name, dir = p.Database, p.Dir
	})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "host="+dir+" port=5432 user=postgres dbname="+name+" sslmode=disable")
	if err == nil {
		conn.Close(ctx)
		t.Fatalf("database %s still exists after its test ended", name)
	}
	var pgErr interface{ SQLState() string }
	if !errors.As(err, &pgErr) || pgErr.SQLState() != "3D000" {
		t.Errorf("connect to dropped database: %v, want invalid_catalog_name (3D000)", err)
	}
}
