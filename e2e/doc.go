// Package e2e holds hwauthd's end-to-end tests: the daemon runs in the test
// process behind its real Unix socket, over the real pcscd with vpcd readers
// (a private instance from internal/testenv) and emulated PIV cards, and the
// tests talk to it through the Go client, raw HTTP and independent clients.
package e2e
