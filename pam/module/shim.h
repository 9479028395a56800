/* The C side of pam_hwauth.so: what cgo cannot do directly (call the
 * application's conversation function pointer, call the variadic
 * pam_syslog, give pam_set_data a cleanup function). */
#ifndef HWAUTH_PAM_SHIM_H
#define HWAUTH_PAM_SHIM_H

#include <stddef.h>
#include <security/pam_appl.h>

/* hw_converse sends one message of the given style through the PAM
 * conversation. For a prompt, *out receives the answer (malloc'd, to be
 * released with hw_free_secret) and *outlen its length; out may be NULL for
 * messages that expect no answer. */
int hw_converse(pam_handle_t *pamh, int style, const char *msg, char **out, size_t *outlen);

/* hw_free_secret zeroes n bytes of s and frees it. */
void hw_free_secret(char *s, size_t n);

/* hw_syslog logs msg with pam_syslog at priority prio. */
void hw_syslog(pam_handle_t *pamh, int prio, const char *msg);

/* hw_set_session remembers hwauthd's session id in the PAM handle for
 * close_session; hw_get_session returns it, or NULL. */
int hw_set_session(pam_handle_t *pamh, const char *id);
const char *hw_get_session(pam_handle_t *pamh);

#endif
