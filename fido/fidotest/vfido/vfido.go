// Package vfido is TEST-ONLY: importing it links vfido.c into the test
// binary, whose fido_dev_open and fido_dev_info_manifest then interpose over
// libfido2's, so unmodified go-libfido2 and the real libfido2 reach software
// authenticators (fido/fidotest/softkey) on SOCK_SEQPACKET sockets. It also builds the
// same C file as an LD_PRELOAD library for Debian's fido2-tools. Import it
// only from _test.go files; production binaries must never link it.
package vfido

/*
#cgo CFLAGS: -I/usr/include/fido
#cgo LDFLAGS: -lfido2 -ldl
#include <stdlib.h>
#include <fido.h>
*/
import "C"

import (
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hwauthd/hwauthd/fido/fidotest/softkey"
	"github.com/hwauthd/hwauthd/internal/testenv"
)

// EnvKeys is the environment variable listing the registered key sockets.
const EnvKeys = "HWAUTHD_VFIDO"

// Prefix starts the device path of a virtual key.
const Prefix = "vfido:"

//go:embed vfido.c
var source []byte

var envMu sync.Mutex

// Device is one software key served for a test.
type Device struct {
	// Key is the authenticator with its knobs.
	Key *softkey.Key
	// Path is the libfido2 device path, "vfido:" and the socket path.
	Path string
	// Socket is the socket path.
	Socket string

	srv *softkey.Server
}

// Unplug closes the key's socket and every open handle and drops the key
// from $HWAUTHD_VFIDO, as pulling the key out.
func (d *Device) Unplug() {
	d.srv.Close()
	envMu.Lock()
	defer envMu.Unlock()
	keys := strings.Split(os.Getenv(EnvKeys), ",")
	os.Setenv(EnvKeys, strings.Join(slices.DeleteFunc(keys, func(s string) bool { return s == d.Socket }), ","))
}

// Start serves a new software key for the test, registers it in
// $HWAUTHD_VFIDO so that fido_dev_info_manifest lists it, and removes both
// when the test ends. Tests that call Start must not run in parallel.
func Start(t testing.TB, opts softkey.Options) *Device {
	t.Helper()
	sock := filepath.Join(shortTempDir(t), "key.sock")
	k := softkey.New(opts)
	srv, err := softkey.Listen(sock, k)
	if err != nil {
		t.Fatalf("serve soft key: %v", err)
	}
	envMu.Lock()
	keys := []string{sock}
	if old := os.Getenv(EnvKeys); old != "" {
		keys = append(strings.Split(old, ","), sock)
	}
	os.Setenv(EnvKeys, strings.Join(keys, ","))
	envMu.Unlock()
	d := &Device{Key: k, Path: Prefix + sock, Socket: sock, srv: srv}
	t.Cleanup(d.Unplug)
	return d
}

// shortTempDir returns a temporary directory whose socket paths fit in
// sun_path (108 bytes); t.TempDir can be too long.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vfido")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// BuildPreload compiles vfido.c as an LD_PRELOAD library into a temporary
// directory and returns its path; gcc and libfido2-dev are required.
func BuildPreload(t testing.TB) string {
	t.Helper()
	testenv.RequireBinaries(t, "gcc")
	testenv.RequireFiles(t, "/usr/include/fido.h")
	dir := t.TempDir()
	src := filepath.Join(dir, "vfido.c")
	if err := os.WriteFile(src, source, 0o600); err != nil {
		t.Fatal(err)
	}
	so := filepath.Join(dir, "libvfido.so")
	out, err := exec.Command("gcc", "-shared", "-fPIC", "-Wall", "-O2", "-o", so, src, "-ldl", "-lfido2").CombinedOutput()
	if err != nil {
		t.Fatalf("build preload library: %v\n%s", err, out)
	}
	return so
}
