//go:build cgo

package main

// The daemon's threads sleep with a wider timer slack (see the package; it
// needs cgo).
import _ "github.com/hwauthd/hwauthd/internal/timerslack"
