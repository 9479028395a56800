/*
 * frame.h: the frames of the protocol between pam_hwauth.so and its helper
 * (described in package relay, pam/relay/relay.go): decoding a frame's
 * header, checking and decoding each frame the helper sends, and building
 * the start frame the module sends.
 *
 * Pure functions over bytes: no I/O, no PAM calls, no globals. The module
 * includes this file; so does the tests' cgo wrapper (pam/internal/cmodule),
 * which compiles it alone, under AddressSanitizer, to fuzz it against the
 * Go side of the protocol.
 */
#ifndef HW_FRAME_H
#define HW_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <security/_pam_types.h>

#define HW_PROTOCOL "2"
#define HW_MAX_PAYLOAD 8192
#define HW_HEADER 5
/* The longest silence a helper may announce (one day). */
#define HW_MAX_SILENCE_MS 86400000u

/* Frame types (package relay). Module to helper: */
#define HW_START 'I'   /* the call: NUL-separated fields */
#define HW_ANSWER 'R'  /* a prompt's answer */
#define HW_SHOWN 'K'   /* a message was shown (or suppressed by PAM_SILENT) */
#define HW_CONVERR 'X' /* the conversation failed: its error text */
/* Helper to module: */
#define HW_CONVERSE 'C' /* one byte of message style, then the text */
#define HW_LOG 'L'      /* one byte of syslog priority, then the text */
#define HW_SESSION 'S'  /* the hwauthd session id to keep */
#define HW_SILENCE 'W'  /* 4 bytes big-endian: ms the helper may stay silent */
#define HW_DONE 'D'     /* one byte: the PAM_* result */

/* hw_frame is a frame of the helper as hw_parse_frame decodes it. */
struct hw_frame {
	char type;
	int style;        /* HW_CONVERSE: the PAM message style */
	int priority;     /* HW_LOG: the syslog priority */
	const char *text; /* HW_CONVERSE, HW_LOG: the text after the style or
			   * priority byte; HW_SESSION: the id. Up to the
			   * first NUL; points into the payload. */
	uint32_t silence; /* HW_SILENCE: ms, at most HW_MAX_SILENCE_MS */
	int result;       /* HW_DONE: the PAM_* result */
};

/* hw_parse_header decodes a frame header into its type and payload length.
 * It returns -1 for a payload over HW_MAX_PAYLOAD. */
static int hw_parse_header(const unsigned char hdr[HW_HEADER], char *type, uint32_t *len)
{
	uint32_t n = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];

	if (n > HW_MAX_PAYLOAD)
		return -1;
	*type = (char)hdr[0];
	*len = n;
	return 0;
}

/* hw_parse_frame checks a frame of the helper, of type and with the n bytes
 * of payload p, and decodes it into f. p[n] must be NUL (hw_recv leaves it
 * so). It returns -1 for a frame that breaks the protocol: an unknown type,
 * a message style other than PAM's four, a priority above LOG_DEBUG, a
 * result that is no PAM_* value, or a payload of the wrong size. */
static int hw_parse_frame(char type, const char *p, size_t n, struct hw_frame *f)
{
	const unsigned char *u = (const unsigned char *)p;
	uint32_t ms;

	memset(f, 0, sizeof(*f));
	f->type = type;
	switch (type) {
	case HW_CONVERSE:
		if (n < 1)
			return -1;
		switch (u[0]) {
		case PAM_PROMPT_ECHO_OFF:
		case PAM_PROMPT_ECHO_ON:
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			break;
		default:
			return -1;
		}
		f->style = u[0];
		f->text = p + 1;
		return 0;
	case HW_LOG:
		if (n < 1 || u[0] > LOG_DEBUG)
			return -1;
		f->priority = u[0];
		f->text = p + 1;
		return 0;
	case HW_SESSION:
		if (n < 1)
			return -1;
		f->text = p;
		return 0;
	case HW_SILENCE:
		if (n != 4)
			return -1;
		ms = (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
		f->silence = ms > HW_MAX_SILENCE_MS ? HW_MAX_SILENCE_MS : ms;
		return 0;
	case HW_DONE:
		if (n != 1 || u[0] >= _PAM_RETURN_VALUES)
			return -1;
		f->result = u[0];
		return 0;
	default:
		return -1;
	}
}

/* hw_start_payload builds the start frame's payload: protocol version,
 * operation, user, flags, session id, login session id (XDG_SESSION_ID)
 * and the module arguments, each NUL-terminated; user, session and login
 * may be NULL (empty). It returns a malloc'd payload of *n bytes, or NULL
 * when it would be over HW_MAX_PAYLOAD or memory runs out. */
static char *hw_start_payload(const char *op, const char *user, int flags, const char *session,
			      const char *login, int argc, const char **argv, size_t *n)
{
	char flagbuf[16];
	const char *fixed[6];
	size_t len = 0, off = 0;
	char *p;
	int i;

	snprintf(flagbuf, sizeof(flagbuf), "%d", flags);
	fixed[0] = HW_PROTOCOL;
	fixed[1] = op;
	fixed[2] = user != NULL ? user : "";
	fixed[3] = flagbuf;
	fixed[4] = session != NULL ? session : "";
	fixed[5] = login != NULL ? login : "";
	for (i = 0; i < 6; i++)
		len += strlen(fixed[i]) + 1;
	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if (len > HW_MAX_PAYLOAD)
		return NULL;
	p = malloc(len);
	if (p == NULL)
		return NULL;
	for (i = 0; i < 6 + argc; i++) {
		const char *s = i < 6 ? fixed[i] : argv[i - 6];
		size_t l = strlen(s) + 1;

		memcpy(p + off, s, l);
		off += l;
	}
	*n = len;
	return p;
}

#endif
