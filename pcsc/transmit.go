package pcsc

// #cgo pkg-config: libpcsclite
// #include <winscard.h>
//
// static LONG transmitInto(SCARDHANDLE h, DWORD proto, const BYTE *cmd, DWORD cmdLen, BYTE *rsp, DWORD *rspLen) {
// 	SCARD_IO_REQUEST pci = { proto, sizeof(SCARD_IO_REQUEST) };
// 	return SCardTransmit(h, &pci, cmd, cmdLen, NULL, rsp, rspLen);
// }
import "C"

import (
	"reflect"
	"unsafe"

	"github.com/ebfe/scard"
)

// receiveBufferSize is pcsc-lite's MAX_BUFFER_SIZE_EXTENDED, the largest
// response SCardTransmit writes: 64 KiB of data, the status word and the
// framing of extended APDUs.
const receiveBufferSize = 4 + 3 + 1<<16 + 3 + 2

// ebfe/scard's Card.Transmit allocates a fresh 64 KiB receive buffer for
// every APDU (about 200 KB of garbage per PIV signature). Card instead calls
// SCardTransmit itself into a receive buffer of its own, reused for every
// APDU, with the handle and protocol ebfe/scard's Card holds. They are
// unexported, so scardCard mirrors its layout; rawTransmit is true only when
// the pinned module's Card has exactly that layout (TestScardCardLayout
// fails otherwise), and Card falls back to ebfe/scard's Transmit if not.
type scardCard struct {
	handle         uintptr
	activeProtocol scard.Protocol
}

var rawTransmit = sameLayout(reflect.TypeFor[scard.Card](), reflect.TypeFor[scardCard]())

// sameLayout tells whether two struct types have the same fields (names,
// types, offsets) and size.
func sameLayout(a, b reflect.Type) bool {
	if a.Size() != b.Size() || a.NumField() != b.NumField() {
		return false
	}
	for i := range a.NumField() {
		fa, fb := a.Field(i), b.Field(i)
		if fa.Name != fb.Name || fa.Type != fb.Type || fa.Offset != fb.Offset {
			return false
		}
	}
	return true
}

// transmitInto sends cmd on h and writes the response into rsp, returning
// its length.
func transmitInto(h *scard.Card, cmd, rsp []byte) (int, error) {
	if !rawTransmit {
		r, err := h.Transmit(cmd)
		return copy(rsp, r), err
	}
	sc := (*scardCard)(unsafe.Pointer(h))
	n := C.DWORD(len(rsp))
	r := C.transmitInto(C.SCARDHANDLE(sc.handle), C.DWORD(sc.activeProtocol),
		(*C.BYTE)(unsafe.Pointer(&cmd[0])), C.DWORD(len(cmd)), (*C.BYTE)(unsafe.Pointer(&rsp[0])), &n)
	if r != C.SCARD_S_SUCCESS {
		return 0, scard.Error(r)
	}
	return int(n), nil
}
