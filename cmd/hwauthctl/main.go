// Command hwauthctl is the command-line client of hwauthd: it shows readers
// and authenticators, watches events, verifies and changes PINs, signs,
// registers authenticators for users, signs in and out, provisions TPM
// virtual smart cards, links certificate identities to accounts and sets
// security key PINs. What cannot be undone asks for confirmation first.
// PINs and PUKs are read from the terminal without echo (or from stdin with
// --pin-stdin), never from the command line.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
