package vpcd

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// quickAck re-arms TCP_QUICKACK, which Linux clears after it is used, so the
// next segment from vpcd is acknowledged at once.
func quickAck(conn any) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
}
