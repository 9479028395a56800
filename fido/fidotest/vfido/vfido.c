/*
 * vfido.c: a TEST-ONLY interposer that lets unmodified libfido2 clients talk
 * to the in-repo software authenticator (fido/fidotest/softkey).
 *
 * It defines fido_dev_open and fido_dev_info_manifest. For device paths of
 * the form "vfido:/path/to/key.sock" it installs fido_dev_set_io_functions
 * callbacks that move 64-byte CTAPHID reports over a SOCK_SEQPACKET Unix
 * socket; every other path goes to the real libfido2 through
 * dlsym(RTLD_NEXT, ...). fido_dev_info_manifest appends one entry per socket
 * listed in $HWAUTHD_VFIDO (comma separated) after the real devices.
 *
 * It is compiled two ways: into the cgo package fido/fidotest/vfido (in-process
 * tests; the executable's definitions interpose over libfido2.so's), and as
 * an LD_PRELOAD shared object for Debian's fido2-token/-cred/-assert.
 * Reads time out (HWAUTHD_VFIDO_TIMEOUT_MS, default 5000) so a broken peer
 * cannot hang a test. Production binaries never link this file.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fido.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define VFIDO_PREFIX "vfido:"
#define VFIDO_REPORT 64

struct vfido_handle {
	int fd;
};

static int
vfido_timeout_ms(void)
{
	const char *s = getenv("HWAUTHD_VFIDO_TIMEOUT_MS");
	int v = s != NULL ? atoi(s) : 0;

	return v > 0 ? v : 5000;
}

static void *
vfido_open(const char *path)
{
	struct sockaddr_un sa;
	struct vfido_handle *h;
	const char *sock;
	int fd;

	if (path == NULL || strncmp(path, VFIDO_PREFIX, strlen(VFIDO_PREFIX)) != 0)
		return NULL;
	sock = path + strlen(VFIDO_PREFIX);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(sa.sun_path))
		return NULL;
	strcpy(sa.sun_path, sock);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0)
		return NULL;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (h = calloc(1, sizeof(*h))) == NULL) {
		close(fd);
		return NULL;
	}
	h->fd = fd;
	return h;
}

static void
vfido_close(void *handle)
{
	struct vfido_handle *h = handle;

	close(h->fd);
	free(h);
}

/* vfido_read returns one 64-byte report (libfido2 reads rx_len bytes, no
 * report id), or -1 on timeout, EOF (key unplugged) or error. */
static int
vfido_read(void *handle, unsigned char *buf, size_t len, int ms)
{
	struct vfido_handle *h = handle;
	unsigned char pkt[VFIDO_REPORT];
	struct pollfd p = { .fd = h->fd, .events = POLLIN };
	int cap = vfido_timeout_ms();
	ssize_t n;

	if (ms < 0 || ms > cap)
		ms = cap;
	if (poll(&p, 1, ms) <= 0)
		return -1;
	if ((n = recv(h->fd, pkt, sizeof(pkt), 0)) <= 0)
		return -1;
	if ((size_t)n > len)
		n = (ssize_t)len;
	memcpy(buf, pkt, (size_t)n);
	return (int)n;
}

/* vfido_write sends one report; libfido2 prefixes it with a report id byte
 * (len is tx_len + 1), which is stripped here. */
static int
vfido_write(void *handle, const unsigned char *buf, size_t len)
{
	struct vfido_handle *h = handle;
	unsigned char pkt[VFIDO_REPORT];
	size_t n;

	if (len < 2)
		return -1;
	n = len - 1 > VFIDO_REPORT ? VFIDO_REPORT : len - 1;
	memset(pkt, 0, sizeof(pkt));
	memcpy(pkt, buf + 1, n);
	if (send(h->fd, pkt, sizeof(pkt), MSG_NOSIGNAL) != (ssize_t)sizeof(pkt))
		return -1;
	return (int)len;
}

static const fido_dev_io_t vfido_io = {
	vfido_open, vfido_close, vfido_read, vfido_write,
};

static void *
vfido_next(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (f == NULL)
		fprintf(stderr, "vfido: dlsym(RTLD_NEXT, %s): %s\n", name, dlerror());
	return f;
}

int
fido_dev_open(fido_dev_t *dev, const char *path)
{
	int (*real)(fido_dev_t *, const char *) = vfido_next("fido_dev_open");
	int r;

	if (real == NULL)
		return FIDO_ERR_INTERNAL;
	if (path != NULL && strncmp(path, VFIDO_PREFIX, strlen(VFIDO_PREFIX)) == 0 &&
	    (r = fido_dev_set_io_functions(dev, &vfido_io)) != FIDO_OK)
		return r;
	return real(dev, path);
}

int
fido_dev_info_manifest(fido_dev_info_t *devlist, size_t ilen, size_t *olen)
{
	int (*real)(fido_dev_info_t *, size_t, size_t *) =
	    vfido_next("fido_dev_info_manifest");
	const char *env = getenv("HWAUTHD_VFIDO");
	char *list, *tok, *save = NULL;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];

	if (real == NULL)
		return FIDO_ERR_INTERNAL;
	if (real(devlist, ilen, olen) != FIDO_OK)
		*olen = 0; /* no hidraw support here: list the virtual keys only */
	if (env == NULL || *env == '\0' || (list = strdup(env)) == NULL)
		return FIDO_OK;
	for (tok = strtok_r(list, ",", &save); tok != NULL && *olen < ilen;
	    tok = strtok_r(NULL, ",", &save)) {
		if (snprintf(path, sizeof(path), "%s%s", VFIDO_PREFIX, tok) >= (int)sizeof(path))
			continue;
		if (fido_dev_info_set(devlist, *olen, path, "hwauthd",
		    "softkey", &vfido_io, NULL) == FIDO_OK)
			(*olen)++;
	}
	free(list);
	return FIDO_OK;
}
