#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <security/pam_modules.h>
#include <security/pam_ext.h>

#include "shim.h"
#include "_cgo_export.h"

#define HW_SESSION_KEY "hwauthd_session"

int hw_converse(pam_handle_t *pamh, int style, const char *msg, char **out, size_t *outlen)
{
	const struct pam_conv *conv = NULL;
	struct pam_message m = { .msg_style = style, .msg = msg };
	const struct pam_message *mp = &m;
	struct pam_response *resp = NULL;
	int rc;

	if (out != NULL) {
		*out = NULL;
		*outlen = 0;
	}
	rc = pam_get_item(pamh, PAM_CONV, (const void **)&conv);
	if (rc != PAM_SUCCESS)
		return rc;
	if (conv == NULL || conv->conv == NULL)
		return PAM_CONV_ERR;
	rc = conv->conv(1, &mp, &resp, conv->appdata_ptr);
	if (rc != PAM_SUCCESS)
		return rc;
	if (resp == NULL)
		return PAM_SUCCESS;
	if (resp->resp != NULL) {
		if (out != NULL) {
			*out = resp->resp;
			*outlen = strlen(resp->resp);
		} else {
			hw_free_secret(resp->resp, strlen(resp->resp));
		}
	}
	free(resp);
	return PAM_SUCCESS;
}

void hw_free_secret(char *s, size_t n)
{
	if (s == NULL)
		return;
	explicit_bzero(s, n);
	free(s);
}

void hw_syslog(pam_handle_t *pamh, int prio, const char *msg)
{
	pam_syslog(pamh, prio, "%s", msg);
}

static void hw_free_data(pam_handle_t *pamh, void *data, int status)
{
	(void)pamh;
	(void)status;
	free(data);
}

int hw_set_session(pam_handle_t *pamh, const char *id)
{
	char *copy = strdup(id);
	int rc;

	if (copy == NULL)
		return PAM_BUF_ERR;
	rc = pam_set_data(pamh, HW_SESSION_KEY, copy, hw_free_data);
	if (rc != PAM_SUCCESS)
		free(copy);
	return rc;
}

const char *hw_get_session(pam_handle_t *pamh)
{
	const void *data = NULL;

	if (pam_get_data(pamh, HW_SESSION_KEY, &data) != PAM_SUCCESS)
		return NULL;
	return data;
}

/* The service module entry points (Linux-PAM Module Writers' Guide §4),
 * defined in C because their prototypes in <security/pam_modules.h> take
 * const char **argv, which a cgo export cannot declare. */

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return goAuthenticate(pamh, flags, argc, (char **)argv);
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_IGNORE;
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags; (void)argc; (void)argv;
	return hw_get_session(pamh) != NULL ? PAM_SUCCESS : PAM_IGNORE;
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return goCloseSession(pamh, flags, argc, (char **)argv);
}
