package vreader_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/internal/testenv/pcscenv"
	"github.com/hwauthd/hwauthd/pcsc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
	"github.com/hwauthd/hwauthd/pcsc/vpcd"
	"github.com/hwauthd/hwauthd/pcsc/vreader"
)

// dir holds the driver built for this test binary and the channel's socket;
// it is world-traversable so that another user's attempt reaches the socket.
var dir string

// clientEnv makes the test binary a client that connects to the socket
// named in it, asks for reader 0's ATR and prints what happened.
const clientEnv = "VREADER_TEST_CLIENT"

// impostorEnv makes the test binary a server on the socket named in it,
// standing in for hwauthd: it reports how the reader driver treats it.
const impostorEnv = "VREADER_TEST_IMPOSTOR"

func TestMain(m *testing.M) {
	if path := os.Getenv(clientEnv); path != "" {
		os.Exit(client(path))
	}
	if path := os.Getenv(impostorEnv); path != "" {
		os.Exit(impostor(path))
	}
	sock, err := pcscenv.WithReaderDriver(2, vreader.ReaderConf)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vreader test setup:", err)
		os.Exit(1)
	}
	dir = filepath.Dir(sock)
	testenv.Main(m)
}

func socket() string { return filepath.Join(dir, "readers.sock") }

// publicTestBinary copies the test binary where nobody may run it (go test
// builds it in a directory only root can enter).
func publicTestBinary(t *testing.T) string {
	t.Helper()
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "vreader.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// client connects as the reader driver would and reports the outcome.
func client(path string) int {
	conn, err := net.Dial("unix", path)
	if err != nil {
		fmt.Println("connect:", err)
		return 0
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	// Writes may succeed before the server hangs up; the read tells.
	_ = vpcd.WriteFrame(conn, []byte{'H', 'W', 0})
	_ = vpcd.WriteFrame(conn, []byte{vpcd.CtrlATR})
	atr, err := vpcd.ReadFrame(conn)
	if err != nil {
		fmt.Println("served: no,", err)
		return 0
	}
	fmt.Printf("served: ATR %X\n", atr)
	return 0
}

// impostor listens on path and reports what the first connection does:
// hwauthd's driver, seeing a server that is neither root nor hwauthd, hangs
// up without saying which reader it is.
func impostor(path string) int {
	ln, err := net.Listen("unix", path)
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	defer ln.Close()
	ln.(*net.UnixListener).SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := ln.Accept()
	if err != nil {
		fmt.Println("no connection:", err)
		return 1
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if hello, err := vpcd.ReadFrame(conn); err != nil {
		fmt.Println("driver hung up:", err)
	} else {
		fmt.Printf("driver said %X\n", hello)
	}
	return 0
}

func serve(t *testing.T) *vreader.Server {
	t.Helper()
	srv, err := vreader.Listen(socket(), 2, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return srv
}

// waitCard waits, with a deadline, until PC/SC can (or can no longer)
// connect to the card in reader; pcscd polls the driver for presence.
func waitCard(t *testing.T, reader string, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := pcsc.Connect(context.Background(), reader)
		if err == nil {
			c.Close()
		}
		if (err == nil) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: card present = %v not reached: %v", reader, want, err)
		}
		<-tick.C
	}
}

// TestCardInOwnReader presents an emulated PIV card through the driver:
// pcscd shows it in a reader of hwauthd's, the PIV client and OpenSC sign
// with it, and withdrawing it is a card removal.
func TestCardInOwnReader(t *testing.T) {
	p := pcscenv.PCSCD(t)
	reader := vreader.FriendlyName + " 00 00"
	srv := serve(t)
	card, err := pivcard.New(pivcard.Options{Label: "Presented card"})
	if err != nil {
		t.Fatal(err)
	}
	i, err := srv.Present(card)
	if err != nil || i != 0 {
		t.Fatalf("Present = %d, %v", i, err)
	}
	waitCard(t, reader, true)
	conn, err := pcsc.Connect(context.Background(), reader)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := piv.NewClient(conn)
	ctx := context.Background()
	if err := cl.VerifyPIN(ctx, []byte(pivcard.DefaultPIN)); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("through hwauthd's own reader"))
	cert, _ := x509.ParseCertificate(card.Certificate(piv.SlotAuthentication))
	sig, err := cl.PrivateKey(piv.SlotAuthentication, cert.PublicKey).SignContext(ctx, rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("signature through the driver does not verify")
	}
	conn.Close()

	const module = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
	if out, err := p.Command(ctx, "pkcs11-tool", "--module", module, "-L").CombinedOutput(); err != nil || !strings.Contains(string(out), "Presented card") {
		t.Errorf("pkcs11-tool -L: %v\n%s", err, out)
	}

	// pcscd numbers hwauthd's readers in their first pair of digits, which
	// the TPM backend's events name.
	if out, err := p.Command(ctx, "opensc-tool", "-l").CombinedOutput(); err != nil || !strings.Contains(string(out), vreader.FriendlyName+" 01 00") {
		t.Errorf("opensc-tool -l lacks %q: %v\n%s", vreader.FriendlyName+" 01 00", err, out)
	}

	srv.Withdraw(i)
	waitCard(t, reader, false)
	if _, err := srv.Present(card); err != nil {
		t.Fatal(err)
	}
	waitCard(t, reader, true)
}

func TestFull(t *testing.T) {
	srv, err := vreader.Listen(filepath.Join(t.TempDir(), "s"), 1, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	card, _ := pivcard.New(pivcard.Options{})
	if _, err := srv.Present(card); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Present(card); !errors.Is(err, vreader.ErrFull) {
		t.Errorf("second card in one reader: %v, want ErrFull", err)
	}
	if _, err := vreader.Listen(filepath.Join(t.TempDir(), "s"), vreader.MaxReaders+1, nil, nil); err == nil {
		t.Error("11 readers accepted")
	}
}

// TestOtherUserCannotReachReader: another local user (nobody) cannot
// connect to the channel (the socket is 0600), and even through a socket
// made world-writable by mistake the server serves it no card.
func TestOtherUserCannotReachReader(t *testing.T) {
	testenv.RequireRoot(t)
	srv := serve(t)
	card, _ := pivcard.New(pivcard.Options{})
	if _, err := srv.Present(card); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(socket())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v; want 0600", fi.Mode(), err)
	}
	bin := publicTestBinary(t)
	asNobody := func() string {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), clientEnv+"="+socket())
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client as nobody: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := asNobody(); !strings.Contains(out, "permission denied") {
		t.Errorf("nobody on the 0600 socket: %s", out)
	}
	if err := os.Chmod(socket(), 0o666); err != nil {
		t.Fatal(err)
	}
	if out := asNobody(); !strings.Contains(out, "served: no") {
		t.Errorf("nobody on a world-writable socket: %s", out)
	}
	// Root, as pcscd, is served: the check above is the uid, not the path.
	os.Unsetenv(clientEnv)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), clientEnv+"="+socket())
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "served: ATR") {
		t.Errorf("root client: %v %s", err, out)
	}
}

// TestPackagedReaderConf: the reader.conf.d file the Debian package installs
// is what ReaderConf gives for the installed paths and ten readers.
func TestPackagedReaderConf(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "packaging", "pcscd", "hwauthd"))
	if err != nil {
		t.Fatal(err)
	}
	if want := vreader.ReaderConf(vreader.DefaultSocket, vreader.DriverPath, vreader.MaxReaders); string(b) != want {
		t.Errorf("packaging/pcscd/hwauthd differs from ReaderConf; regenerate it:\n%s", want)
	}
}

// TestDriverRefusesImpostor: another local user who manages to put a socket
// where hwauthd's should be (here in a directory opened up on purpose)
// cannot present a card: pcscd's driver checks the server's uid and hangs
// up before it even says which reader it is.
func TestDriverRefusesImpostor(t *testing.T) {
	testenv.RequireRoot(t)
	pcscenv.PCSCD(t)
	bin := publicTestBinary(t)
	os.Remove(socket())
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755); os.Remove(socket()) })
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), impostorEnv+"="+socket())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "driver hung up") {
		t.Fatalf("impostor as nobody: %v\n%s", err, out)
	}
}
