// Command hwauthd-pkcs11 is hwauthd's PKCS#11 module helper. The daemon
// starts it with one end of a private socketpair on file descriptor 3; the
// helper loads the PKCS#11 modules the daemon names and answers its requests
// (package pkcs11/wire) until the daemon closes the socket. Running modules
// here keeps a module that crashes or hangs from taking the daemon down.
//
// It is not meant to be run by hand.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/hwauthd/hwauthd/pkcs11/helper"
	"golang.org/x/sys/unix"
)

// ipcFD is the file descriptor of the daemon's socket (exec.Cmd.ExtraFiles[0]).
const ipcFD = 3

func main() {
	// PINs pass through this process: no core dumps, no ptrace by others.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	conn := os.NewFile(ipcFD, "hwauthd-ipc")
	if conn == nil {
		fmt.Fprintln(os.Stderr, "hwauthd-pkcs11: no socket on fd 3; this helper is started by hwauthd")
		os.Exit(2)
	}
	if err := helper.Serve(context.Background(), conn); err != nil {
		fmt.Fprintf(os.Stderr, "hwauthd-pkcs11: %v\n", err)
		os.Exit(1)
	}
}
