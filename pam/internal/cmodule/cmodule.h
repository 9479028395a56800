/* Entry points of frame.c for cgo; see package cmodule. */
#ifndef CM_CMODULE_H
#define CM_CMODULE_H

#include <stddef.h>
#include <stdint.h>

/* cm_frame mirrors struct hw_frame of pam/module/frame.h. */
struct cm_frame {
	char type;
	int style;
	int priority;
	const char *text;
	uint32_t silence;
	int result;
};

int cm_parse_header(const unsigned char *hdr, char *type, uint32_t *len);
int cm_parse_frame(char type, const char *p, size_t n, struct cm_frame *out);
char *cm_start_payload(const char *op, const char *user, int flags, const char *session,
		       const char *login, int argc, const char **argv, size_t *n);

#endif
