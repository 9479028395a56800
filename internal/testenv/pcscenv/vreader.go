package pcscenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/hwauthd/hwauthd/internal/testenv"
)

// WithReaderDriver builds hwauthd's reader driver (pcsc/vreader/driver) as
// the Makefile does and adds n of its readers, served on a socket in a
// world-traversable temporary directory, to this test binary's private
// pcscd. Call it from TestMain before Main; it returns the socket path.
func WithReaderDriver(n int, readerConf func(socket, driver string, n int) string) (string, error) {
	dir, err := os.MkdirTemp("", "hwauthd-vreader-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..", "..", "pcsc", "vreader", "driver", "ifd-hwauthd.c")
	driver := filepath.Join(dir, "libifdhwauthd.so")
	cmd := exec.Command("gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-fvisibility=hidden",
		"-I/usr/include/PCSC", "-shared", "-Wl,-z,defs", "-o", driver, src)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("build the reader driver: %v\n%s", err, b)
	}
	testenv.AtExit(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "readers.sock")
	WithReaderConfig("hwauthd", readerConf(socket, driver, n))
	return socket, nil
}
