// Package cmodule compiles the frame code of the C PAM module
// (pam/module/frame.h: the frame header, the checks of the helper's
// frames, the start frame) into Go, so that tests can fuzz the module's
// parser against the Go side of the protocol (pam/relay). Every input is
// copied into a C buffer of exactly its size, and outside the race detector
// the C code is built with AddressSanitizer (asan.go), so a read or write
// past a buffer stops the test.
//
// frame.h here is a symbolic link to the module's: the go command hashes
// only the files in a package's directory, so through the link it rebuilds
// this package whenever the module's frame code changes.
//
// Test support: no program links it.
package cmodule

/*
#cgo CFLAGS: -std=gnu11
#include <stdlib.h>
#include "cmodule.h"
*/
import "C"

import (
	"unsafe"
)

// HeaderSize is the size of a frame header: a type byte and a 4-byte
// big-endian payload length.
const HeaderSize = 5

// Header decodes a frame header with the module's hw_parse_header; ok is
// false when the module refuses it (a payload over its maximum).
func Header(hdr [HeaderSize]byte) (typ byte, n uint32, ok bool) {
	buf := cBytes(hdr[:])
	defer C.free(buf)
	var ct C.char
	var cn C.uint32_t
	if C.cm_parse_header((*C.uchar)(buf), &ct, &cn) < 0 {
		return 0, 0, false
	}
	return byte(ct), uint32(cn), true
}

// Frame is a frame of the helper as the module's hw_parse_frame decodes
// it (struct hw_frame).
type Frame struct {
	Type     byte
	Style    int
	Priority int
	Text     string
	Silence  uint32 // ms
	Result   int
}

// ParseFrame runs the module's hw_parse_frame on a frame of type typ with
// payload p, given, as the module's hw_recv leaves it, in a buffer of
// len(p)+1 bytes ending in NUL; ok is false when the module refuses the
// frame.
func ParseFrame(typ byte, p []byte) (f Frame, ok bool) {
	buf := cBytes(append(p[:len(p):len(p)], 0))
	defer C.free(buf)
	var cf C.struct_cm_frame
	if C.cm_parse_frame(C.char(typ), (*C.char)(buf), C.size_t(len(p)), &cf) < 0 {
		return Frame{}, false
	}
	f = Frame{Type: byte(cf._type), Style: int(cf.style), Priority: int(cf.priority),
		Silence: uint32(cf.silence), Result: int(cf.result)}
	if cf.text != nil {
		f.Text = C.GoString(cf.text)
	}
	return f, true
}

// StartPayload builds a start frame's payload with the module's
// hw_start_payload; ok is false when the module refuses (longer than the
// protocol allows). The strings reach C as C strings: each ends at its
// first NUL.
func StartPayload(op, user string, flags int32, session, login string, args []string) (payload []byte, ok bool) {
	var free []unsafe.Pointer
	defer func() {
		for _, p := range free {
			C.free(p)
		}
	}()
	str := func(s string) *C.char {
		p := C.CString(s)
		free = append(free, unsafe.Pointer(p))
		return p
	}
	argv := (**C.char)(C.malloc(C.size_t(max(len(args), 1)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	free = append(free, unsafe.Pointer(argv))
	av := unsafe.Slice(argv, max(len(args), 1))
	for i, a := range args {
		av[i] = str(a)
	}
	var n C.size_t
	p := C.cm_start_payload(str(op), str(user), C.int(flags), str(session), str(login), C.int(len(args)), argv, &n)
	if p == nil {
		return nil, false
	}
	defer C.free(unsafe.Pointer(p))
	return C.GoBytes(unsafe.Pointer(p), C.int(n)), true
}

// cBytes copies b into a malloc'd C buffer of exactly len(b) bytes (at
// least one, so that an empty input still gets a buffer of its own).
func cBytes(b []byte) unsafe.Pointer {
	p := C.malloc(C.size_t(max(len(b), 1)))
	copy(unsafe.Slice((*byte)(p), max(len(b), 1)), b)
	return p
}
