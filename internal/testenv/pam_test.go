package testenv

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPAM runs pamtester under pam_wrapper against pam_wrapper's own
// pam_matrix module, whose password comes from stdin: the right one signs
// in, a wrong one fails, and /etc/pam.d is never read (the service exists
// only in the private directory).
func TestPAM(t *testing.T) {
	env := PAM(t)
	matrix := filepath.Join(filepath.Dir(PAMWrapperLib), "pam_wrapper", "pam_matrix.so")
	RequireFiles(t, matrix)
	passdb := filepath.Join(t.TempDir(), "passdb")
	if err := os.WriteFile(passdb, []byte("alice:s3cret:hwtest\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env.WriteService(t, "hwtest", "auth required "+matrix+" passdb="+passdb)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	out, err := env.Run(ctx, "hwtest", "alice", "s3cret\n")
	if err != nil || !strings.Contains(out, "successfully authenticated") {
		t.Fatalf("right password: %v\n%s", err, out)
	}
	out, err = env.Run(ctx, "hwtest", "alice", "wrong\n")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(out, "Authentication failure") {
		t.Fatalf("wrong password: %v\n%s", err, out)
	}
	out, err = env.Run(ctx, "no-such-service", "alice", "s3cret\n")
	if err == nil {
		t.Fatalf("a service missing from the private dir succeeded:\n%s", out)
	}
}
