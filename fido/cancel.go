package fido

/*
#cgo LDFLAGS: -lfido2
#include <stdint.h>
#include <fido.h>

// hw_cancel sends CTAPHID_CANCEL on the device handle stored at *devp, if
// the handle is open. The pointer is read here, in C, because go-libfido2
// writes it without synchronization when it opens the device (a data race
// in Device.Cancel); the caller holds the Device mutex, so the handle cannot
// be closed and freed meanwhile.
static int hw_cancel(uintptr_t addr) {
	fido_dev_t *dev = __atomic_load_n((fido_dev_t **)addr, __ATOMIC_ACQUIRE);
	if (dev == NULL)
		return 1;
	return fido_dev_cancel(dev) == FIDO_OK ? 0 : -1;
}
*/
import "C"

import (
	"reflect"
	"runtime"
	"unsafe"

	libfido2 "github.com/keys-pub/go-libfido2"
)

// devOffset is the offset of go-libfido2 Device's unexported "dev" field
// (the fido_dev_t pointer), or 0 when the layout is not the expected one.
var devOffset = func() uintptr {
	f, ok := reflect.TypeFor[libfido2.Device]().FieldByName("dev")
	if !ok || f.Type.Kind() != reflect.Pointer || f.Offset == 0 {
		return 0
	}
	return f.Offset
}()

// cancelDevice asks the device to cancel the request in flight (CTAP 2.1
// §11.2.9.1.5 CTAPHID_CANCEL). It reports whether a handle was open. It
// replaces Device.Cancel, whose read of the handle races with the
// operation's unsynchronized write; without the expected layout it falls
// back to Device.Cancel.
func cancelDevice(d *libfido2.Device) bool {
	if devOffset == 0 {
		return d.Cancel() == nil
	}
	d.Lock()
	defer d.Unlock()
	// The field's address goes to C as an integer: cgocheck would otherwise
	// inspect the whole Device, which holds Go pointers. Go heap objects do
	// not move, and d stays alive through the call.
	addr := uintptr(unsafe.Add(unsafe.Pointer(d), devOffset))
	r := C.hw_cancel(C.uintptr_t(addr))
	runtime.KeepAlive(d)
	return r == 0
}
