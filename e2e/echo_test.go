package e2e

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// echoEnv makes the test binary an echo server (runEcho): on the Unix
// socket named by echoEnv+"_SOCKET" it answers every request head (up to a
// blank line) with the bytes hex-encoded in echoEnv, through Go's
// netpoller as hwauthd does, and nothing else. The benchmark's floor: what
// an exchange of the same bytes between two Go processes costs on this
// machine, without HTTP, routing or handlers.
const echoEnv = "HWAUTHD_E2E_ECHO"

// startEcho starts an echo server answering answer and returns its socket.
func startEcho(b *testing.B, answer []byte) string {
	b.Helper()
	socket := filepath.Join(b.TempDir(), "echo.sock")
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), echoEnv+"="+hex.EncodeToString(answer), echoEnv+"_SOCKET="+socket)
	cmd.Stderr = os.Stderr
	if line := startReadingFirstLine(b, cmd); line != "listening\n" {
		b.Fatalf("echo server: %q", line)
	}
	return socket
}

// startReadingFirstLine starts cmd, which is killed when b ends, and
// returns the first line it prints on its standard output (the line that
// says it is ready); it fails b when none comes.
func startReadingFirstLine(b *testing.B, cmd *exec.Cmd) string {
	b.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("%s: %q, %v", cmd.Path, line, err)
	}
	return line
}

// runEcho is the echo server process.
func runEcho() int {
	answer, err := hex.DecodeString(os.Getenv(echoEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		return 1
	}
	ln, err := net.Listen("unix", os.Getenv(echoEnv+"_SOCKET"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		return 1
	}
	fmt.Println("listening")
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 4096)
			for n := 0; ; {
				k, err := c.Read(buf[n:])
				if err != nil {
					return
				}
				n += k
				if bytes.HasSuffix(buf[:n], []byte("\r\n\r\n")) {
					n = 0
					if _, err := c.Write(answer); err != nil {
						return
					}
				}
			}
		}()
	}
}

// echoClient is a connection to an echo server (or the daemon) with
// blocking reads and writes on the calling thread, as the Go client's.
type echoClient struct{ fd int }

// dialEcho connects to socket.
func dialEcho(b *testing.B, socket string) *echoClient {
	b.Helper()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: socket}); err != nil {
		b.Fatal(err)
	}
	return &echoClient{fd: fd}
}

// exchange writes req and reads an answer of len(buf) bytes into buf.
func (e *echoClient) exchange(req, buf []byte) error {
	if _, err := syscall.Write(e.fd, req); err != nil {
		return err
	}
	for n := 0; n < len(buf); {
		k, err := syscall.Read(e.fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if k == 0 {
			return errors.New("echo: connection closed")
		}
		n += k
	}
	return nil
}
