package main

/*
#include <stdlib.h>
#include <security/pam_appl.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/hwauthd/hwauthd/pam/signin"
)

// conversation is the PAM conversation of the application, for
// signin.Module. Messages are not shown under PAM_SILENT; prompts are.
type conversation struct{ p handle }

var _ signin.Conversation = conversation{}

// PromptSecret asks with PAM_PROMPT_ECHO_OFF. The answer is copied into a
// new []byte (the caller clears it) and the C buffer is zeroed and freed.
func (c conversation) PromptSecret(prompt string) ([]byte, error) {
	cp := C.CString(prompt)
	defer C.free(unsafe.Pointer(cp))
	var out *C.char
	var n C.size_t
	if rc := C.hw_converse(c.p.h, C.PAM_PROMPT_ECHO_OFF, cp, &out, &n); rc != C.PAM_SUCCESS {
		return nil, fmt.Errorf("prompt: %s", C.GoString(C.pam_strerror(c.p.h, rc)))
	}
	if out == nil {
		return nil, nil
	}
	defer C.hw_free_secret(out, n)
	return C.GoBytes(unsafe.Pointer(out), C.int(n)), nil
}

// Info shows msg as PAM_TEXT_INFO.
func (c conversation) Info(msg string) error { return c.show(C.PAM_TEXT_INFO, msg) }

// Error shows msg as PAM_ERROR_MSG.
func (c conversation) Error(msg string) error { return c.show(C.PAM_ERROR_MSG, msg) }

func (c conversation) show(style C.int, msg string) error {
	if c.p.flags&C.PAM_SILENT != 0 {
		return nil
	}
	cm := C.CString(msg)
	defer C.free(unsafe.Pointer(cm))
	if rc := C.hw_converse(c.p.h, style, cm, nil, nil); rc != C.PAM_SUCCESS {
		return fmt.Errorf("show message: %s", C.GoString(C.pam_strerror(c.p.h, rc)))
	}
	return nil
}
