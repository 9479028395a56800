package boltstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/store"
)

// crashChildEnv names the store file a re-executed test binary writes to
// until it is killed.
const crashChildEnv = "HWAUTHD_BOLTSTORE_CRASH_CHILD"

// crashUsers is how many users the child spreads its writes over.
const crashUsers = 8

// TestMain runs the test binary as the crash child when TestCrashConsistency
// starts it so, and as the tests otherwise.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
	}
	os.Exit(m.Run())
}

// crashChild is the child of TestCrashConsistency: it writes as fast as it
// can and reports each committed write on stdout until it is killed.
func crashChild(path string) {
	s, err := Open(path, Options{SkipCheck: true})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	for i := rand.IntN(1 << 40); ; i++ { // fresh ids in every run
		user := fmt.Sprintf("user%d", i%crashUsers)
		r := store.Registration{User: user, AuthenticatorID: fmt.Sprintf("piv-%d", i), KeyID: "9a", PublicKey: make([]byte, 200)}
		_, err := s.AddRegistration(ctx, r, 5, false)
		if errors.Is(err, store.ErrLimitReached) {
			rs, _ := s.Registrations(ctx, user)
			_, err = s.RemoveRegistration(ctx, user, rs[i%len(rs)].ID)
		}
		if err != nil {
			fmt.Println("write:", err)
			os.Exit(2)
		}
		fmt.Println("ok")
	}
}

// TestCrashConsistency kills a process in the middle of a burst of
// registrations and removals (SIGKILL at a random point) and checks that
// the file opens, passes bbolt's and the store's consistency checks, and
// that every user is within the limit with a valid default.
func TestCrashConsistency(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hwauthd.db")
	for round := range 3 {
		crashOnce(t, path, 20+rand.IntN(150))
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		if !s.checked {
			t.Errorf("round %d: the file left by SIGKILL was not checked in full", round)
		}
		checkUsers(t, s)
		s.Close()
	}
}

// crashOnce runs the child on path and kills it after it reported writes
// committed writes.
func crashOnce(t *testing.T, path string, writes int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; n < writes; n++ {
		if !sc.Scan() || time.Now().After(deadline) {
			t.Fatalf("child stopped after %d writes", n)
		}
		if sc.Text() != "ok" {
			t.Fatalf("child: %s", sc.Text())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// checkUsers checks each user of the crash child: at most five
// registrations and, when any, exactly one default among them.
func checkUsers(t *testing.T, s *Store) {
	t.Helper()
	for i := range crashUsers {
		user := fmt.Sprintf("user%d", i)
		rs, err := s.Registrations(context.Background(), user)
		if err != nil {
			t.Fatal(err)
		}
		defaults := 0
		for _, r := range rs {
			if r.Default {
				defaults++
			}
		}
		if len(rs) > 5 || (len(rs) > 0 && defaults != 1) {
			t.Errorf("%s: %d registrations, %d defaults", user, len(rs), defaults)
		}
	}
}
