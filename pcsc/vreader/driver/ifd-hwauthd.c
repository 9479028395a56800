/*
 * ifd-hwauthd: a pcsc-lite reader driver (IFD handler) whose card is served
 * by hwauthd: a TPM virtual smart card presented as a PIV card.
 *
 * Each reader of /etc/reader.conf.d/hwauthd names "SOCKET:N" as DEVICENAME.
 * The driver connects to hwauthd's Unix socket SOCKET, checks with
 * SO_PEERCRED that the socket is served by root or by the "hwauthd" user (no
 * one else can stand in for hwauthd), says which reader it is, and then
 * speaks vsmartcard's vpcd protocol over the connection: every message is a
 * 2-byte big-endian length and a payload; a 1-byte payload is a control code
 * (0 power off, 1 power on, 2 reset, 4 get ATR, answered with the ATR), a
 * longer one a command APDU answered with the response APDU. hwauthd, for
 * its part, serves only peers running as root (pcscd). Unlike vpcd's TCP
 * port, the channel is reachable by no other local user and no network.
 *
 * A closed connection means no card; the driver reconnects when pcscd next
 * polls for presence, so hwauthd may start, stop and restart at any time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <PCSC/ifdhandler.h>
#include <PCSC/reader.h>

#define EXPORT __attribute__((visibility("default")))

/* MAX_READERS is pcsc-lite's PCSCLITE_MAX_READERS_CONTEXTS; the reader's
 * index is the upper half of its Lun. */
#define MAX_READERS 16
#define MAX_ATR 33
/* IO_TIMEOUT_S bounds one exchange; a TPM signature takes well under it. */
#define IO_TIMEOUT_S 30

enum { CTRL_OFF = 0, CTRL_ON = 1, CTRL_RESET = 2, CTRL_ATR = 4 };

struct reader {
	int used;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned index; /* N of SOCKET:N, told to hwauthd */
	int fd;         /* -1 while not connected */
	unsigned char atr[MAX_ATR];
	size_t atr_len;
	unsigned char buf[2 + 65535]; /* one message; pcscd runs one thread per reader */
};

static struct reader readers[MAX_READERS];

static struct reader *reader_of(DWORD lun)
{
	DWORD i = lun >> 16;
	if (i >= MAX_READERS || !readers[i].used)
		return NULL;
	return &readers[i];
}

static void disconnect(struct reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->atr_len = 0;
}

static int send_all(int fd, const unsigned char *b, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int recv_all(int fd, unsigned char *b, size_t n)
{
	while (n > 0) {
		ssize_t r = recv(fd, b, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* send_frame writes one message in a single send. */
static int send_frame(struct reader *r, const unsigned char *p, size_t n)
{
	if (n > 65535)
		return -1;
	r->buf[0] = (unsigned char)(n >> 8);
	r->buf[1] = (unsigned char)n;
	memmove(r->buf + 2, p, n);
	return send_all(r->fd, r->buf, n + 2);
}

/* recv_frame reads one message into out (cap bytes), its length into *n. */
static int recv_frame(struct reader *r, unsigned char *out, size_t cap, size_t *n)
{
	unsigned char len[2];
	if (recv_all(r->fd, len, 2) < 0)
		return -1;
	*n = ((size_t)len[0] << 8) | len[1];
	if (*n == 0 || *n > cap)
		return -1;
	return recv_all(r->fd, out, *n);
}

/* trusted reports whether uid may serve the reader: root or hwauthd. */
static int trusted(uid_t uid)
{
	struct passwd pw, *res = NULL;
	char buf[1024];
	if (uid == 0)
		return 1;
	if (getpwnam_r("hwauthd", &pw, buf, sizeof buf, &res) != 0 || res == NULL)
		return 0;
	return uid == pw.pw_uid;
}

/* connect_reader connects to hwauthd, checks its credentials and says
 * which reader this is. */
static int connect_reader(struct reader *r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	struct ucred cred;
	socklen_t cl = sizeof cred;
	unsigned char hello[3] = { 'H', 'W', 0 };

	if (r->fd >= 0)
		return 0;
	r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->fd < 0)
		return -1;
	memcpy(sa.sun_path, r->path, sizeof sa.sun_path);
	if (connect(r->fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    getsockopt(r->fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || !trusted(cred.uid) ||
	    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
	    setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
		disconnect(r);
		return -1;
	}
	hello[2] = (unsigned char)r->index;
	if (send_frame(r, hello, sizeof hello) < 0) {
		disconnect(r);
		return -1;
	}
	return 0;
}

/* control sends a control code; CTRL_ATR and the power-up codes read the
 * ATR back. */
static int control(struct reader *r, unsigned char code)
{
	unsigned char c = code;
	size_t n;
	if (connect_reader(r) < 0 || send_frame(r, &c, 1) < 0)
		goto fail;
	if (code == CTRL_OFF)
		return 0;
	if (code != CTRL_ATR) {
		c = CTRL_ATR;
		if (send_frame(r, &c, 1) < 0)
			goto fail;
	}
	if (recv_frame(r, r->atr, sizeof r->atr, &n) < 0)
		goto fail;
	r->atr_len = n;
	return 0;
fail:
	disconnect(r);
	return -1;
}

EXPORT RESPONSECODE IFDHCreateChannelByName(DWORD Lun, LPSTR DeviceName)
{
	DWORD i = Lun >> 16;
	char *colon;
	unsigned long index;
	if (i >= MAX_READERS || DeviceName == NULL)
		return IFD_COMMUNICATION_ERROR;
	colon = strrchr(DeviceName, ':');
	if (colon == NULL || (size_t)(colon - DeviceName) >= sizeof readers[i].path)
		return IFD_COMMUNICATION_ERROR;
	errno = 0;
	index = strtoul(colon + 1, NULL, 10);
	if (errno != 0 || index > 255)
		return IFD_COMMUNICATION_ERROR;
	memset(&readers[i], 0, sizeof readers[i]);
	memcpy(readers[i].path, DeviceName, (size_t)(colon - DeviceName));
	readers[i].index = (unsigned)index;
	readers[i].fd = -1;
	readers[i].used = 1;
	return IFD_SUCCESS;
}

EXPORT RESPONSECODE IFDHCreateChannel(DWORD Lun, DWORD Channel)
{
	(void)Lun;
	(void)Channel;
	return IFD_COMMUNICATION_ERROR; /* DEVICENAME SOCKET:N is required */
}

EXPORT RESPONSECODE IFDHCloseChannel(DWORD Lun)
{
	struct reader *r = reader_of(Lun);
	if (r == NULL)
		return IFD_COMMUNICATION_ERROR;
	disconnect(r);
	r->used = 0;
	return IFD_SUCCESS;
}

EXPORT RESPONSECODE IFDHGetCapabilities(DWORD Lun, DWORD Tag, PDWORD Length, PUCHAR Value)
{
	struct reader *r = reader_of(Lun);
	if (r == NULL || Length == NULL || Value == NULL)
		return IFD_COMMUNICATION_ERROR;
	switch (Tag) {
	case TAG_IFD_ATR:
	case SCARD_ATTR_ATR_STRING:
		if (*Length < r->atr_len)
			return IFD_ERROR_INSUFFICIENT_BUFFER;
		memcpy(Value, r->atr, r->atr_len);
		*Length = r->atr_len;
		return IFD_SUCCESS;
	case TAG_IFD_SLOTS_NUMBER:
		*Length = 1;
		Value[0] = 1;
		return IFD_SUCCESS;
	case TAG_IFD_SIMULTANEOUS_ACCESS:
		*Length = 1;
		Value[0] = MAX_READERS;
		return IFD_SUCCESS;
	case TAG_IFD_THREAD_SAFE:
	case TAG_IFD_SLOT_THREAD_SAFE:
		*Length = 1;
		Value[0] = 0;
		return IFD_SUCCESS;
	}
	return IFD_ERROR_TAG;
}

EXPORT RESPONSECODE IFDHSetCapabilities(DWORD Lun, DWORD Tag, DWORD Length, PUCHAR Value)
{
	(void)Lun;
	(void)Tag;
	(void)Length;
	(void)Value;
	return IFD_NOT_SUPPORTED;
}

EXPORT RESPONSECODE IFDHSetProtocolParameters(DWORD Lun, DWORD Protocol, UCHAR Flags, UCHAR PTS1,
					      UCHAR PTS2, UCHAR PTS3)
{
	(void)Protocol;
	(void)Flags;
	(void)PTS1;
	(void)PTS2;
	(void)PTS3;
	return reader_of(Lun) ? IFD_SUCCESS : IFD_COMMUNICATION_ERROR;
}

EXPORT RESPONSECODE IFDHPowerICC(DWORD Lun, DWORD Action, PUCHAR Atr, PDWORD AtrLength)
{
	struct reader *r = reader_of(Lun);
	unsigned char code;
	if (r == NULL || AtrLength == NULL)
		return IFD_COMMUNICATION_ERROR;
	switch (Action) {
	case IFD_POWER_DOWN:
		*AtrLength = 0;
		if (r->fd >= 0)
			control(r, CTRL_OFF);
		return IFD_SUCCESS;
	case IFD_POWER_UP:
		code = CTRL_ON;
		break;
	case IFD_RESET:
		code = CTRL_RESET;
		break;
	default:
		return IFD_NOT_SUPPORTED;
	}
	if (control(r, code) < 0 || Atr == NULL || *AtrLength < r->atr_len) {
		*AtrLength = 0;
		return IFD_COMMUNICATION_ERROR;
	}
	memcpy(Atr, r->atr, r->atr_len);
	*AtrLength = r->atr_len;
	return IFD_SUCCESS;
}

EXPORT RESPONSECODE IFDHTransmitToICC(DWORD Lun, SCARD_IO_HEADER SendPci, PUCHAR TxBuffer, DWORD TxLength,
				      PUCHAR RxBuffer, PDWORD RxLength, PSCARD_IO_HEADER RecvPci)
{
	struct reader *r = reader_of(Lun);
	size_t n;
	(void)SendPci;
	if (RecvPci != NULL)
		RecvPci->Protocol = 1;
	if (r == NULL || TxBuffer == NULL || RxBuffer == NULL || RxLength == NULL || TxLength < 4 ||
	    TxLength > 65535 || r->fd < 0)
		goto fail;
	if (send_frame(r, TxBuffer, TxLength) < 0 || recv_frame(r, r->buf, sizeof r->buf, &n) < 0) {
		disconnect(r);
		goto fail;
	}
	if (n > *RxLength) {
		*RxLength = 0;
		return IFD_ERROR_INSUFFICIENT_BUFFER;
	}
	memcpy(RxBuffer, r->buf, n);
	*RxLength = n;
	return IFD_SUCCESS;
fail:
	if (RxLength != NULL)
		*RxLength = 0;
	return IFD_COMMUNICATION_ERROR;
}

EXPORT RESPONSECODE IFDHControl(DWORD Lun, DWORD dwControlCode, PUCHAR TxBuffer, DWORD TxLength,
				PUCHAR RxBuffer, DWORD RxLength, LPDWORD pdwBytesReturned)
{
	(void)Lun;
	(void)dwControlCode;
	(void)TxBuffer;
	(void)TxLength;
	(void)RxBuffer;
	(void)RxLength;
	if (pdwBytesReturned != NULL)
		*pdwBytesReturned = 0;
	return IFD_ERROR_NOT_SUPPORTED;
}

EXPORT RESPONSECODE IFDHICCPresence(DWORD Lun)
{
	struct reader *r = reader_of(Lun);
	if (r == NULL)
		return IFD_COMMUNICATION_ERROR;
	return control(r, CTRL_ATR) == 0 ? IFD_ICC_PRESENT : IFD_ICC_NOT_PRESENT;
}
