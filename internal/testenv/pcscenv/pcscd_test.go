package pcscenv

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ebfe/scard"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/pcsc/vpcd"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// atrCard is the smallest vpcd.Card: an ATR, and 9000 to every APDU.
type atrCard struct{}

func (atrCard) ATR() []byte              { return []byte{0x3B, 0x80, 0x80, 0x01, 0x01} }
func (atrCard) Reset()                   {}
func (atrCard) PowerOff()                {}
func (atrCard) Transmit(_ []byte) []byte { return []byte{0x90, 0x00} }

func TestPCSCDReadersAndCard(t *testing.T) {
	p := PCSCD(t)
	if got := os.Getenv("PCSCLITE_CSOCK_NAME"); got != p.SocketPath() {
		t.Fatalf("PCSCLITE_CSOCK_NAME = %q, want %q", got, p.SocketPath())
	}
	if PCSCD(t) != p {
		t.Fatal("second PCSCD call returned another instance")
	}
	testenv.RequireBinaries(t, "opensc-tool")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	out := listReaders(ctx, t, p)
	for i := range 2 {
		if !strings.Contains(out, p.ReaderName(i)) {
			t.Fatalf("opensc-tool -l does not list %q:\n%s", p.ReaderName(i), out)
		}
	}

	conn, err := p.DialReader(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go vpcd.Serve(ctx, conn, atrCard{})
	// opensc-tool -w returns on the insertion event, before its own -a would
	// see the ATR, so wait and read in two runs.
	if out, err := p.Command(ctx, "opensc-tool", "-r", "0", "-w", "-a").CombinedOutput(); err != nil {
		t.Fatalf("opensc-tool -w: %v\n%s", err, out)
	}
	atr, err := p.Command(ctx, "opensc-tool", "-r", "0", "-a").CombinedOutput()
	if err != nil {
		t.Fatalf("opensc-tool -a: %v\n%s", err, atr)
	}
	if !bytes.Contains(bytes.ToLower(atr), []byte("3b:80:80:01:01")) {
		t.Fatalf("ATR of the card in reader 0 = %q, want 3b:80:80:01:01", atr)
	}
}

func listReaders(ctx context.Context, t *testing.T, p *PCSC) string {
	t.Helper()
	out, err := p.Command(ctx, "opensc-tool", "-l").CombinedOutput()
	if err != nil {
		t.Fatalf("opensc-tool -l: %v\n%s", err, out)
	}
	return string(out)
}

func TestPCSCDKillStart(t *testing.T) {
	p := PCSCD(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	oldNS := p.netnsPath()
	p.Kill()
	if _, err := net.Dial("unix", p.SocketPath()); err == nil {
		t.Fatal("pcscd socket still accepts after Kill")
	}
	if _, err := p.DialReader(ctx, 1); err == nil {
		t.Fatal("DialReader succeeded while pcscd is down")
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if p.netnsPath() == oldNS {
		t.Fatalf("restarted pcscd still uses %s", oldNS)
	}
	conn, err := p.DialReader(ctx, 1)
	if err != nil {
		t.Fatalf("DialReader after Start: %v", err)
	}
	conn.Close()
}

func TestNetnsCommandSeesReaders(t *testing.T) {
	p := PCSCD(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Inside the namespace, /proc/net/tcp lists vpcd's listeners; outside
	// (the test process's namespace) it need not.
	out, err := p.NetnsCommand(ctx, "cat", "/proc/net/tcp").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), ":8C7B 00000000:0000 0A") {
		t.Fatalf("vpcd listener not visible inside the namespace:\n%s", out)
	}
}

func TestDialReaderRejectsBadIndex(t *testing.T) {
	p := PCSCD(t)
	if _, err := p.DialReader(context.Background(), 2); err == nil {
		t.Fatal("DialReader(2) succeeded; only readers 0 and 1 exist")
	}
}

func TestSweepStaleDirs(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(pid int) string {
		d, err := os.MkdirTemp("", pcscdDirPattern)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(strconv.Itoa(pid)), 0o600); err != nil {
			t.Fatal(err)
		}
		return d
	}
	stale, live := mk(dead.Process.Pid), mk(os.Getpid())
	sweepStaleDirs()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("directory of an exited test binary still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("directory of a running test binary removed: %v", err)
	}
}

// TestCardSwapAfterFailedResetIsAnInsertion: a reset that pcscd makes after
// the card's connection closed (as when a client dies holding a card that a
// test already removed) would drop the connection inside vpcd without pcscd
// seeing an empty reader, and the next card would stay invisible. Closing a
// card's connection returns once pcscd has seen the card go, so the next
// card is an insertion with its own ATR.
func TestCardSwapAfterFailedResetIsAnInsertion(t *testing.T) {
	p := PCSCD(t)
	mark := p.LogMark()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(p.Diagnostics(mark))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sc, err := scard.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Release()

	first := atrCard{}
	serveCtx, stopFirst := context.WithCancel(ctx)
	served := insertCard(ctx, t, p, serveCtx, first)
	waitCard(ctx, t, p.ReaderName(0), first.ATR())
	card, err := sc.Connect(p.ReaderName(0), scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		t.Fatal(err)
	}
	stopFirst()
	<-served
	_ = card.Disconnect(scard.ResetCard) // fails: the card is gone

	second := otherATRCard{}
	insertCard(ctx, t, p, ctx, second)
	waitCard(ctx, t, p.ReaderName(0), second.ATR())
}

// otherATRCard is atrCard with another ATR.
type otherATRCard struct{ atrCard }

func (otherATRCard) ATR() []byte { return []byte{0x3B, 0x80, 0x80, 0x01, 0x02} }

// insertCard dials reader 0 and serves card until ctx ends; the returned
// channel is closed when serving has stopped and the connection is closed.
func insertCard(dialCtx context.Context, t *testing.T, p *PCSC, ctx context.Context, card vpcd.Card) <-chan struct{} {
	t.Helper()
	conn, err := p.DialReader(dialCtx, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = vpcd.Serve(ctx, conn, card)
	}()
	return done
}

// waitCard waits until pcscd shows a card with atr, not mute, in reader.
func waitCard(ctx context.Context, t *testing.T, reader string, atr []byte) {
	t.Helper()
	_, err := watchReader(ctx, reader, func(s scard.ReaderState) bool {
		return s.EventState&scard.StatePresent != 0 && s.EventState&scard.StateMute == 0 && bytes.Equal(s.Atr, atr)
	})
	if err != nil {
		t.Fatalf("want a card with ATR % X: %v", atr, err)
	}
}
