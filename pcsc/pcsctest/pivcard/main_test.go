package main

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/internal/testenv/pcscenv"
	"github.com/hwauthd/hwauthd/pcsc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"--vpcd", "127.0.0.1:1", "--slots", "9a=p384,9d=rsa2048", "--pin-tries", "5"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.opts.Slots) != 2 || c.opts.Slots[0].Alg != piv.KeyAlgP384 || c.opts.PINTries != 5 || c.opts.PIN != "123456" {
		t.Errorf("parseFlags = %+v", c)
	}
	for _, args := range [][]string{{}, {"--vpcd", "x", "--slots", "9z=p256"}, {"--bogus"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
}

// proc is a running pivcard with its control pipes.
type proc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func (p *proc) do(t *testing.T, line string) string {
	t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
	if !p.out.Scan() {
		t.Fatalf("%s: no answer: %v", line, p.out.Err())
	}
	return p.out.Text()
}

func start(t *testing.T, env *pcscenv.PCSC, bin string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd := env.NetnsCommand(ctx, bin, append([]string{"--vpcd", env.VPCDAddr(1), "--control"}, args...)...)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	return p
}

// readGUID waits (with a deadline) until reader 1 holds a card, or none when
// want is false, and returns the card's CHUID GUID (zero when none).
func readGUID(t *testing.T, env *pcscenv.PCSC, want bool) [16]byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		guid, err := tryGUID(env)
		if (err == nil) == want {
			return guid
		}
		if time.Now().After(deadline) {
			t.Fatalf("card present = %v not reached: %v", want, err)
		}
		<-tick.C
	}
}

// tryGUID reads the CHUID GUID of the card in reader 1.
func tryGUID(env *pcscenv.PCSC) ([16]byte, error) {
	ctx := context.Background()
	card, err := pcsc.Connect(ctx, env.ReaderName(1))
	if err != nil {
		return [16]byte{}, err
	}
	defer card.Close()
	ch, err := piv.NewClient(card).ReadCHUID(ctx)
	return ch.GUID, err
}

// TestControl runs the pivcard binary against the private pcscd's second
// reader: remove and insert on stdin are seen through PC/SC, and --state
// keeps the card's identity across runs.
func TestControl(t *testing.T) {
	env := pcscenv.PCSCD(t)
	bin := filepath.Join(t.TempDir(), "pivcard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	state := filepath.Join(t.TempDir(), "card.json")
	p := start(t, env, bin, "--state", state, "--label", "Control Card")
	guid := readGUID(t, env, true)
	if got := p.do(t, "insert"); !strings.HasPrefix(got, "error: ") {
		t.Errorf("insert while inserted = %q, want an error", got)
	}
	if got := p.do(t, "remove"); got != "ok" {
		t.Fatalf("remove = %q", got)
	}
	readGUID(t, env, false)
	if got := p.do(t, "insert"); got != "ok" {
		t.Fatalf("insert = %q", got)
	}
	if again := readGUID(t, env, true); again != guid {
		t.Errorf("GUID after re-insertion %x, want %x", again, guid)
	}
	if got := p.do(t, "dance"); !strings.HasPrefix(got, "error: unknown command") {
		t.Errorf("unknown command = %q", got)
	}
	if got := p.do(t, "quit"); got != "ok" {
		t.Errorf("quit = %q", got)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("pivcard exit: %v", err)
	}
	readGUID(t, env, false)
	p = start(t, env, bin, "--state", state)
	if again := readGUID(t, env, true); again != guid {
		t.Errorf("GUID after restart with --state %x, want %x", again, guid)
	}
	p.do(t, "quit")
}
