/*
 * pam_hwauth.so: sign-in with a smart card, TPM virtual smart card or
 * security key through hwauthd.
 *
 * This module holds no sign-in logic and no Go runtime. For each call it
 * starts the helper (HW_HELPER_PATH, the Go program cmd/hwauthd-pam-helper)
 * with posix_spawn, hands it the call over a socket pair on the helper's fd 3
 * and relays what the helper asks for: conversation messages and prompts of
 * any style, syslog lines, the session id to keep for close_session, and the
 * PAM result. The helper runs with an empty environment and /dev/null as
 * stdin, stdout and stderr; nothing of the host process but that one socket
 * reaches it. The protocol is described in pam/relay (package relay).
 *
 * A prompt's answer (the PIN) is written to the socket only, then zeroed and
 * freed. A helper that exits, crashes or breaks the protocol fails the call
 * with PAM_SYSTEM_ERR; one that stays silent longer than it announced (a
 * "W" frame; HW_START_MS before the first frame) is killed.
 *
 * Build: make pam (hardened flags in the Makefile).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <security/pam_modules.h>
#include <security/pam_ext.h>

#include "frame.h"

#ifndef HW_HELPER_PATH
#define HW_HELPER_PATH "/usr/libexec/hwauthd/hwauthd-pam-helper"
#endif

#define HW_EXPORT __attribute__((visibility("default")))

#define HW_SESSION_KEY "hwauthd_session"
#define HW_CHANNEL_FD 3
/* How long the helper may take to send its first frame. */
#define HW_START_MS 10000

/* hw_call is one run of the helper. */
struct hw_call {
	pam_handle_t *pamh;
	int flags;
	pid_t pid;
	int pidfd;         /* -1 when the kernel has no pidfd_open */
	int fd;            /* our end of the socket pair */
	uint32_t silence;  /* ms the helper may stay silent */
};

static int64_t hw_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* hw_wait polls fd for events until deadline (ms, CLOCK_MONOTONIC). It
 * returns 0 when ready, -1 with errno ETIMEDOUT or the poll error. */
static int hw_wait(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int64_t left = deadline - hw_now_ms();
		int rc;

		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		rc = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

/* hw_read_full reads n bytes before deadline; EOF is an error (EPIPE). */
static int hw_read_full(struct hw_call *c, unsigned char *buf, size_t n, int64_t deadline)
{
	while (n > 0) {
		ssize_t r;

		if (hw_wait(c->fd, POLLIN, deadline) < 0)
			return -1;
		r = read(c->fd, buf, n);
		if (r == 0) {
			errno = EPIPE;
			return -1;
		}
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

/* hw_send writes one frame: the header and the payload straight from p (no
 * copy, so a PIN is written to the socket and nowhere else). MSG_NOSIGNAL:
 * a helper that is gone must not raise SIGPIPE in the host. */
static int hw_send(struct hw_call *c, char type, const void *p, size_t n)
{
	unsigned char hdr[HW_HEADER] = {
		(unsigned char)type, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
		(unsigned char)(n >> 8), (unsigned char)n,
	};
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)p, n } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	int64_t deadline = hw_now_ms() + c->silence;

	if (n > HW_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	while (msg.msg_iovlen > 0) {
		ssize_t w;
		size_t done;

		if (hw_wait(c->fd, POLLOUT, deadline) < 0)
			return -1;
		w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		done = (size_t)w;
		while (msg.msg_iovlen > 0 && done >= msg.msg_iov[0].iov_len) {
			done -= msg.msg_iov[0].iov_len;
			msg.msg_iov++;
			msg.msg_iovlen--;
		}
		if (msg.msg_iovlen > 0) {
			msg.msg_iov[0].iov_base = (char *)msg.msg_iov[0].iov_base + done;
			msg.msg_iov[0].iov_len -= done;
		}
	}
	return 0;
}

/* hw_recv reads one frame within the helper's silence limit. The payload
 * is malloc'd and NUL-terminated; release it with hw_free. */
static int hw_recv(struct hw_call *c, char *type, char **payload, size_t *n)
{
	unsigned char hdr[HW_HEADER];
	int64_t deadline = hw_now_ms() + c->silence;
	uint32_t len;
	char *p;

	*payload = NULL;
	if (hw_read_full(c, hdr, sizeof(hdr), deadline) < 0)
		return -1;
	if (hw_parse_header(hdr, type, &len) < 0) {
		errno = EMSGSIZE;
		return -1;
	}
	p = malloc(len + 1);
	if (p == NULL)
		return -1;
	if (hw_read_full(c, (unsigned char *)p, len, deadline) < 0) {
		free(p);
		return -1;
	}
	p[len] = '\0';
	*payload = p;
	*n = len;
	return 0;
}

/* hw_free zeroes n bytes of p and frees it. */
static void hw_free(char *p, size_t n)
{
	if (p == NULL)
		return;
	explicit_bzero(p, n);
	free(p);
}

/* hw_cloexec_above moves fd to a descriptor >= 10 (close-on-exec), so that
 * the spawn's file actions on 0-3 cannot clobber it. */
static int hw_cloexec_above(int fd)
{
	int moved;

	if (fd >= 10)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	close(fd);
	return moved;
}

/* hw_spawn starts the helper with our socket end c->fd and its end on fd 3. */
static int hw_spawn(struct hw_call *c)
{
	static char *const argv[] = { "hwauthd-pam-helper", NULL };
	static char *const envp[] = { NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	sv[0] = hw_cloexec_above(sv[0]);
	sv[1] = hw_cloexec_above(sv[1]);
	if (sv[0] < 0 || sv[1] < 0) {
		if (sv[0] >= 0)
			close(sv[0]);
		if (sv[1] >= 0)
			close(sv[1]);
		return -1;
	}
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, sv[1], HW_CHANNEL_FD);
	posix_spawn_file_actions_addclosefrom_np(&fa, HW_CHANNEL_FD + 1);
	/* The host's blocked signals and handlers are not the helper's. */
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&c->pid, HW_HELPER_PATH, &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(sv[1]);
	if (rc != 0) {
		close(sv[0]);
		errno = rc;
		return -1;
	}
	c->fd = sv[0];
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
#ifdef SYS_pidfd_open
	c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
#endif
	return 0;
}

/* hw_reap ends the helper: it waits until deadline for it to exit (kills it
 * when kill is set or the deadline passes) and returns 0 when it exited with
 * status 0 or was reaped by the host (SIGCHLD ignored or handled there). */
static int hw_reap(struct hw_call *c, int kill_it, int64_t deadline)
{
	int status = 0;
	pid_t r;

	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (!kill_it && c->pidfd >= 0 && hw_wait(c->pidfd, POLLIN, deadline) < 0)
		kill_it = 1;
	if (kill_it) {
#ifdef SYS_pidfd_send_signal
		if (c->pidfd < 0 || syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0) < 0)
#endif
			if (waitpid(c->pid, &status, WNOHANG) == 0)
				kill(c->pid, SIGKILL);
	}
	do
		r = waitpid(c->pid, &status, 0);
	while (r < 0 && errno == EINTR);
	if (c->pidfd >= 0) {
		close(c->pidfd);
		c->pidfd = -1;
	}
	if (r < 0)
		return errno == ECHILD && !kill_it ? 0 : -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !kill_it)
		return 0;
	if (WIFSIGNALED(status))
		pam_syslog(c->pamh, LOG_ERR, "helper %s killed by signal %d", HW_HELPER_PATH, WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		pam_syslog(c->pamh, LOG_ERR, "helper %s exited with status %d", HW_HELPER_PATH, WEXITSTATUS(status));
	return -1;
}

/* hw_converse shows one message of the helper (f, from hw_parse_frame)
 * through the application's conversation and sends the helper its answer. */
static int hw_converse(struct hw_call *c, const struct hw_frame *f)
{
	const struct pam_conv *conv = NULL;
	struct pam_message m;
	const struct pam_message *mp = &m;
	struct pam_response *resp = NULL;
	int style = f->style, rc;
	const char *err;
	size_t n;

	if ((style == PAM_ERROR_MSG || style == PAM_TEXT_INFO) && (c->flags & PAM_SILENT))
		return hw_send(c, HW_SHOWN, NULL, 0);
	m.msg_style = style;
	m.msg = f->text;
	rc = pam_get_item(c->pamh, PAM_CONV, (const void **)&conv);
	if (rc == PAM_SUCCESS && (conv == NULL || conv->conv == NULL))
		rc = PAM_CONV_ERR;
	if (rc == PAM_SUCCESS)
		rc = conv->conv(1, &mp, &resp, conv->appdata_ptr);
	if (rc != PAM_SUCCESS) {
		err = pam_strerror(c->pamh, rc);
		return hw_send(c, HW_CONVERR, err, strlen(err));
	}
	if (style == PAM_ERROR_MSG || style == PAM_TEXT_INFO) {
		if (resp != NULL) {
			if (resp->resp != NULL)
				hw_free(resp->resp, strlen(resp->resp));
			free(resp);
		}
		return hw_send(c, HW_SHOWN, NULL, 0);
	}
	if (resp == NULL || resp->resp == NULL) {
		free(resp);
		return hw_send(c, HW_ANSWER, NULL, 0);
	}
	n = strlen(resp->resp);
	if (n > HW_MAX_PAYLOAD) {
		err = "answer too long";
		rc = hw_send(c, HW_CONVERR, err, strlen(err));
	} else {
		rc = hw_send(c, HW_ANSWER, resp->resp, n);
	}
	hw_free(resp->resp, n);
	free(resp);
	return rc;
}

static void hw_free_data(pam_handle_t *pamh, void *data, int status)
{
	(void)pamh;
	(void)status;
	free(data);
}

/* hw_keep_session remembers hwauthd's session id for close_session. */
static void hw_keep_session(struct hw_call *c, const char *id)
{
	char *copy = strdup(id);

	if (copy == NULL || pam_set_data(c->pamh, HW_SESSION_KEY, copy, hw_free_data) != PAM_SUCCESS) {
		free(copy);
		pam_syslog(c->pamh, LOG_WARNING, "cannot keep the hwauthd session for sign-out");
	}
}

/* hw_handle acts on one frame of the helper. It returns 1 when the helper
 * is done (*result set), 0 to go on, -1 on a protocol error. */
static int hw_handle(struct hw_call *c, char type, const char *p, size_t n, int *result)
{
	struct hw_frame f;

	if (hw_parse_frame(type, p, n, &f) < 0)
		return -1;
	switch (f.type) {
	case HW_CONVERSE:
		return hw_converse(c, &f) < 0 ? -1 : 0;
	case HW_LOG:
		pam_syslog(c->pamh, f.priority, "%s", f.text);
		return 0;
	case HW_SESSION:
		hw_keep_session(c, f.text);
		return 0;
	case HW_SILENCE:
		c->silence = f.silence;
		return 0;
	default: /* HW_DONE */
		*result = f.result;
		return 1;
	}
}

/* hw_run runs the helper for one operation and returns its PAM result. */
static int hw_run(pam_handle_t *pamh, int flags, const char *op, const char *user, const char *session,
		  const char *login, int argc, const char **argv)
{
	struct hw_call c = { .pamh = pamh, .flags = flags, .pid = -1, .pidfd = -1, .fd = -1, .silence = HW_START_MS };
	int result = PAM_SYSTEM_ERR, done = 0;
	size_t n;
	char *start = hw_start_payload(op, user, flags, session, login, argc, argv, &n);

	if (start == NULL) {
		pam_syslog(pamh, LOG_ERR, "arguments too long");
		return PAM_SERVICE_ERR;
	}
	if (hw_spawn(&c) < 0) {
		pam_syslog(pamh, LOG_ERR, "cannot start %s: %m", HW_HELPER_PATH);
		free(start);
		return PAM_SYSTEM_ERR;
	}
	if (hw_send(&c, HW_START, start, n) < 0) {
		pam_syslog(pamh, LOG_ERR, "cannot talk to %s: %m", HW_HELPER_PATH);
		free(start);
		hw_reap(&c, 1, 0);
		return PAM_SYSTEM_ERR;
	}
	free(start);
	while (!done) {
		char type = 0, *p = NULL;
		size_t len = 0;

		if (hw_recv(&c, &type, &p, &len) < 0) {
			int eof = errno == EPIPE;

			if (errno == ETIMEDOUT)
				pam_syslog(pamh, LOG_ERR, "helper %s silent for %u ms: killed", HW_HELPER_PATH, c.silence);
			else if (eof)
				pam_syslog(pamh, LOG_ERR, "helper %s ended without a result", HW_HELPER_PATH);
			else
				pam_syslog(pamh, LOG_ERR, "helper %s: %m: killed", HW_HELPER_PATH);
			/* A helper that closed its end is waited for (and killed
			 * if it does not exit); any other one is killed at once. */
			hw_reap(&c, !eof, hw_now_ms() + c.silence);
			return PAM_SYSTEM_ERR;
		}
		done = hw_handle(&c, type, p, len, &result);
		hw_free(p, len);
		if (done < 0) {
			pam_syslog(pamh, LOG_ERR, "helper %s: protocol error (frame %#x)", HW_HELPER_PATH,
				   (unsigned char)type);
			hw_reap(&c, 1, 0);
			return PAM_SYSTEM_ERR;
		}
	}
	if (hw_reap(&c, 0, hw_now_ms() + c.silence) < 0)
		return PAM_SYSTEM_ERR;
	return result;
}

/* The service module entry points (Linux-PAM Module Writers' Guide §4). */

HW_EXPORT int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const char *user = NULL;
	int rc = pam_get_user(pamh, &user, NULL);

	if (rc != PAM_SUCCESS || user == NULL) {
		pam_syslog(pamh, LOG_ERR, "cannot determine the user name");
		return rc != PAM_SUCCESS ? rc : PAM_USER_UNKNOWN;
	}
	return hw_run(pamh, flags, "authenticate", user, NULL, NULL, argc, argv);
}

HW_EXPORT int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_SUCCESS;
}

HW_EXPORT int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_IGNORE;
}

static const char *hw_session(pam_handle_t *pamh)
{
	const void *data = NULL;

	if (pam_get_data(pamh, HW_SESSION_KEY, &data) != PAM_SUCCESS)
		return NULL;
	return data;
}

/* open_session opens the pending hwauthd session that authenticate kept, so
 * that it lasts (one that is never opened ends by itself). */
HW_EXPORT int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const char *session = hw_session(pamh);
	const void *user = NULL;

	if (session == NULL)
		return PAM_IGNORE;
	pam_get_item(pamh, PAM_USER, &user);
	/* The login session, when pam_systemd ran before this module. */
	return hw_run(pamh, flags, "open_session", user, session, pam_getenv(pamh, "XDG_SESSION_ID"), argc, argv);
}

HW_EXPORT int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const char *session = hw_session(pamh);
	const void *user = NULL;

	if (session == NULL)
		return PAM_IGNORE;
	pam_get_item(pamh, PAM_USER, &user);
	return hw_run(pamh, flags, "close_session", user, session, NULL, argc, argv);
}
