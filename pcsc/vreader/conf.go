package vreader

import (
	"fmt"
	"strings"
)

// Installed locations of the channel's two ends.
const (
	// DefaultSocket is where hwauthd listens for the driver, in its runtime
	// directory.
	DefaultSocket = "/run/hwauthd/readers.sock"
	// DriverPath is where the Debian package installs the reader driver.
	DriverPath = "/usr/lib/pcsc/drivers/serial/libifdhwauthd.so"
)

// ReaderConf returns the reader.conf.d file that makes pcscd load the
// driver at driverPath for readers readers served on socket: one entry per
// reader, DEVICENAME "SOCKET:N". pcscd reads it only when it starts.
func ReaderConf(socket, driverPath string, readers int) string {
	var b strings.Builder
	b.WriteString("# hwauthd's virtual smart card readers: TPM virtual smart cards presented\n" +
		"# as PIV cards. Each reader's card is served by hwauthd over a private\n" +
		"# Unix socket (see hwauthd.toml(5), [tpm] present_readers).\n")
	for i := range readers {
		fmt.Fprintf(&b, "\nFRIENDLYNAME %q\nDEVICENAME %s:%d\nLIBPATH %s\nCHANNELID %d\n", FriendlyName, socket, i, driverPath, i)
	}
	return b.String()
}
