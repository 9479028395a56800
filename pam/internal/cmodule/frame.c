/*
 * The C PAM module's frame code (pam/module/frame.h) compiled alone for
 * package cmodule, behind entry points cgo can call (frame.h's functions are
 * static, as the module wants them).
 */
#include "frame.h"
#include "cmodule.h"

int cm_parse_header(const unsigned char *hdr, char *type, uint32_t *len)
{
	return hw_parse_header(hdr, type, len);
}

int cm_parse_frame(char type, const char *p, size_t n, struct cm_frame *out)
{
	struct hw_frame f;

	if (hw_parse_frame(type, p, n, &f) < 0)
		return -1;
	out->type = f.type;
	out->style = f.style;
	out->priority = f.priority;
	out->text = f.text;
	out->silence = f.silence;
	out->result = f.result;
	return 0;
}

char *cm_start_payload(const char *op, const char *user, int flags, const char *session,
		       const char *login, int argc, const char **argv, size_t *n)
{
	return hw_start_payload(op, user, flags, session, login, argc, argv, n);
}
