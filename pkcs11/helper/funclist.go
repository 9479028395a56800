package helper

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

typedef unsigned long ck_ulong;

// ck_function_list mirrors CK_FUNCTION_LIST of PKCS#11 v2.40 §5.16 on Linux
// (no packing): the version, then 68 function pointers in the order the
// standard lists them.
struct ck_function_list {
	unsigned char major, minor;
	void *fn[68];
};

enum {
	fn_init_pin = 10,
	fn_set_pin = 11,
	fn_login = 18,
	fn_wait_for_slot_event = 67,
};

typedef ck_ulong (*get_function_list_fn)(struct ck_function_list **);
typedef ck_ulong (*login_fn)(ck_ulong, ck_ulong, unsigned char *, ck_ulong);
typedef ck_ulong (*set_pin_fn)(ck_ulong, unsigned char *, ck_ulong, unsigned char *, ck_ulong);
typedef ck_ulong (*init_pin_fn)(ck_ulong, unsigned char *, ck_ulong);
typedef ck_ulong (*wait_fn)(ck_ulong, ck_ulong *, void *);

// p11_function_list returns the function list of an already loaded module,
// or NULL.
static struct ck_function_list *p11_function_list(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	if (h == NULL) return NULL;
	get_function_list_fn get = (get_function_list_fn)dlsym(h, "C_GetFunctionList");
	struct ck_function_list *fl = NULL;
	if (get == NULL || get(&fl) != 0) fl = NULL;
	dlclose(h);
	return fl;
}

static ck_ulong p11_login(struct ck_function_list *fl, ck_ulong sh, ck_ulong user, unsigned char *pin, ck_ulong n) {
	return ((login_fn)fl->fn[fn_login])(sh, user, n ? pin : NULL, n);
}

static ck_ulong p11_set_pin(struct ck_function_list *fl, ck_ulong sh, unsigned char *old, ck_ulong on, unsigned char *new, ck_ulong nn) {
	return ((set_pin_fn)fl->fn[fn_set_pin])(sh, on ? old : NULL, on, nn ? new : NULL, nn);
}

static ck_ulong p11_init_pin(struct ck_function_list *fl, ck_ulong sh, unsigned char *pin, ck_ulong n) {
	return ((init_pin_fn)fl->fn[fn_init_pin])(sh, n ? pin : NULL, n);
}

static ck_ulong p11_wait_for_slot_event(struct ck_function_list *fl, ck_ulong flags, ck_ulong *slot) {
	return ((wait_fn)fl->fn[fn_wait_for_slot_event])(flags, slot, NULL);
}
*/
import "C"

import (
	"errors"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// funcList calls the few PKCS#11 functions that miekg/pkcs11 cannot call
// the way hwauthd needs: C_Login, C_SetPIN and C_InitPIN with the PIN passed
// straight from Go memory (miekg copies it into a C string that is freed
// without being zeroed), and C_WaitForSlotEvent with its return value (miekg
// drops it). The module must already be loaded by miekg/pkcs11.New.
type funcList struct {
	fl *C.struct_ck_function_list
}

// newFuncList finds the function list of the loaded module at path.
func newFuncList(path string) (*funcList, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	fl := C.p11_function_list(cpath)
	if fl == nil {
		return nil, errors.New("C_GetFunctionList failed")
	}
	return &funcList{fl: fl}, nil
}

// bytesPtr returns a C pointer to b's first byte, or nil for an empty b.
func bytesPtr(b []byte) *C.uchar {
	if len(b) == 0 {
		return nil
	}
	return (*C.uchar)(unsafe.Pointer(&b[0]))
}

// login calls C_Login (PKCS#11 v2.40 §5.6). An empty pin is passed as
// NULL, which a token with a protected authentication path reads from its
// PIN pad.
func (f *funcList) login(sh pkcs11.SessionHandle, user uint, pin []byte) error {
	return rv(C.p11_login(f.fl, C.ck_ulong(sh), C.ck_ulong(user), bytesPtr(pin), C.ck_ulong(len(pin))))
}

// setPIN calls C_SetPIN (PKCS#11 v2.40 §5.5).
func (f *funcList) setPIN(sh pkcs11.SessionHandle, oldPIN, newPIN []byte) error {
	return rv(C.p11_set_pin(f.fl, C.ck_ulong(sh), bytesPtr(oldPIN), C.ck_ulong(len(oldPIN)), bytesPtr(newPIN), C.ck_ulong(len(newPIN))))
}

// initPIN calls C_InitPIN (PKCS#11 v2.40 §5.5); the session must be logged
// in as security officer.
func (f *funcList) initPIN(sh pkcs11.SessionHandle, pin []byte) error {
	return rv(C.p11_init_pin(f.fl, C.ck_ulong(sh), bytesPtr(pin), C.ck_ulong(len(pin))))
}

// waitForSlotEvent calls C_WaitForSlotEvent (PKCS#11 v2.40 §5.4).
func (f *funcList) waitForSlotEvent(flags uint) (uint, error) {
	var slot C.ck_ulong
	err := rv(C.p11_wait_for_slot_event(f.fl, C.ck_ulong(flags), &slot))
	return uint(slot), err
}

// rv turns a CK_RV into nil or a pkcs11.Error.
func rv(r C.ck_ulong) error {
	if r == 0 {
		return nil
	}
	return pkcs11.Error(r)
}
