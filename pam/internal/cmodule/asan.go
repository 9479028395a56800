//go:build !race

package cmodule

// The module's C code runs under AddressSanitizer, except with the race
// detector, whose runtime cannot share the process with ASan's.

// #cgo CFLAGS: -fsanitize=address -fno-omit-frame-pointer
// #cgo LDFLAGS: -fsanitize=address
import "C"
