// Command module is the PAM service module pam_hwauth.so: sign-in with a
// smart card, TPM virtual smart card or security key through hwauthd. Build
// it as a shared object:
//
//	go build -buildmode=c-shared -o build/pam_hwauth.so ./pam/module
//
// and use it in /etc/pam.d (see pam/hwauth.pam):
//
//	auth    sufficient pam_hwauth.so [socket=PATH] [timeout=SECONDS] [debug]
//	session optional   pam_hwauth.so [socket=PATH]
//
// The logic lives in package pam/signin; this package is the thin cgo layer:
// the pam_sm_* entry points (in shim.c), the conversation, pam_syslog and
// the session id kept with pam_set_data so that close_session signs out.
//
// The PIN never becomes a Go string: the conversation's answer is copied
// once into a []byte, and the C buffer is zeroed (explicit_bzero) and freed
// at once; the []byte is cleared after the sign-in request. What the PAM
// application itself keeps of the answer is beyond the module's reach.
//
// A Go shared object starts the Go runtime's threads in the process that
// loads it: applications that fork without exec after loading modules (some
// sshd setups) can hang in the child. Login managers, su, sudo and login
// load it fine; canonical/authd ships an exec helper for the others.
package main

/*
#cgo LDFLAGS: -lpam
#include <stdlib.h>
#include <syslog.h>
#include <security/pam_modules.h>
#include <security/pam_ext.h>
#include "shim.h"
*/
import "C"

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/client"
	"github.com/hwauthd/hwauthd/pam/signin"
)

func main() {}

// pamResult maps a signin.Result to its PAM_* value.
func pamResult(r signin.Result) C.int {
	switch r {
	case signin.Success:
		return C.PAM_SUCCESS
	case signin.AuthErr:
		return C.PAM_AUTH_ERR
	case signin.AuthInfoUnavail:
		return C.PAM_AUTHINFO_UNAVAIL
	case signin.UserUnknown:
		return C.PAM_USER_UNKNOWN
	case signin.ConvErr:
		return C.PAM_CONV_ERR
	case signin.Ignore:
		return C.PAM_IGNORE
	default:
		return C.PAM_SERVICE_ERR
	}
}

// goArgs copies the module arguments of the service line.
func goArgs(argc C.int, argv **C.char) []string {
	if argc <= 0 || argv == nil {
		return nil
	}
	out := make([]string, 0, int(argc))
	for _, a := range unsafe.Slice(argv, int(argc)) {
		out = append(out, C.GoString(a))
	}
	return out
}

// handle is one call of the module: the PAM handle and the flags.
type handle struct {
	h     *C.pam_handle_t
	flags C.int
	debug bool
}

func (p handle) log(prio C.int, msg string) {
	cmsg := C.CString(msg)
	defer C.free(unsafe.Pointer(cmsg))
	C.hw_syslog(p.h, prio, cmsg)
}

func (p handle) debugLog(msg string) {
	if p.debug {
		p.log(C.LOG_DEBUG, msg)
	}
}

// user returns PAM_USER, asking for it when the application has not set it.
func (p handle) user() (string, C.int) {
	var cuser *C.char
	if rc := C.pam_get_user(p.h, &cuser, nil); rc != C.PAM_SUCCESS {
		return "", rc
	}
	if cuser == nil {
		return "", C.PAM_USER_UNKNOWN
	}
	return C.GoString(cuser), C.PAM_SUCCESS
}

//export goAuthenticate
func goAuthenticate(pamh *C.pam_handle_t, flags C.int, argc C.int, argv **C.char) C.int {
	p := handle{h: pamh, flags: flags}
	opts, err := signin.ParseArgs(goArgs(argc, argv))
	if err != nil {
		p.log(C.LOG_ERR, "bad configuration: "+err.Error())
		return C.PAM_SERVICE_ERR
	}
	p.debug = opts.Debug
	user, rc := p.user()
	if rc != C.PAM_SUCCESS {
		p.log(C.LOG_ERR, "cannot determine the user name")
		return rc
	}
	m := &signin.Module{Client: client.New(opts.Socket), Conv: conversation{p}, Opts: opts, Debug: p.debugLog}
	out := m.Authenticate(context.Background(), user)
	if out.Result == signin.Success && out.Session != nil {
		p.keepSession(out.Session)
	}
	prio := C.int(C.LOG_NOTICE)
	if out.Result == signin.Success {
		prio = C.LOG_INFO
	}
	p.log(prio, fmt.Sprintf("user %s: %s (%s) authenticator=%s", user, out.Result, out.Reason, out.Authenticator))
	return pamResult(out.Result)
}

// keepSession stores the session id for close_session.
func (p handle) keepSession(s *ipc.Session) {
	cid := C.CString(s.ID)
	defer C.free(unsafe.Pointer(cid))
	if rc := C.hw_set_session(p.h, cid); rc != C.PAM_SUCCESS {
		p.log(C.LOG_WARNING, "cannot keep the hwauthd session for sign-out")
	}
}

//export goCloseSession
func goCloseSession(pamh *C.pam_handle_t, flags C.int, argc C.int, argv **C.char) C.int {
	p := handle{h: pamh, flags: flags}
	cid := C.hw_get_session(pamh)
	if cid == nil {
		return C.PAM_IGNORE
	}
	id := C.GoString(cid)
	opts, err := signin.ParseArgs(goArgs(argc, argv))
	if err != nil {
		p.log(C.LOG_ERR, "bad configuration: "+err.Error())
		return C.PAM_SERVICE_ERR
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.RequestTimeout)
	defer cancel()
	err = client.New(opts.Socket).SignOut(ctx, id)
	if err != nil && !client.IsCode(err, ipc.CodeNotFound) {
		p.log(C.LOG_WARNING, "sign-out of hwauthd session "+id+": "+err.Error())
		return C.PAM_SESSION_ERR
	}
	p.log(C.LOG_INFO, "signed out of hwauthd session "+id)
	return C.PAM_SUCCESS
}
