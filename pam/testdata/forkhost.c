/*
 * forkhost is a PAM application that forks without exec after
 * pam_authenticate, as sshd does: the child authenticates again, opens and
 * closes its session and ends PAM; the parent waits for it, then closes the
 * session of its own authentication. A module that runs Go (or any
 * threads) inside the host would not survive the child's calls.
 *
 *	forkhost SERVICE USER    (one answer per prompt, a line each, on stdin)
 *
 * Prints each step's result; exits 0 when every step succeeded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <security/pam_appl.h>

/* readline reads one line from fd 0 byte by byte (no stdio buffer that
 * the child would inherit a copy of). */
static char *readline(void)
{
	char buf[256];
	size_t n = 0;
	char ch;

	while (n < sizeof(buf) - 1 && read(0, &ch, 1) == 1 && ch != '\n')
		buf[n++] = ch;
	buf[n] = '\0';
	return strdup(buf);
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	int i;

	(void)data;
	if (r == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		printf("[%d] %s\n", msg[i]->msg_style, msg[i]->msg);
		fflush(stdout);
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON)
			r[i].resp = readline();
	}
	*resp = r;
	return PAM_SUCCESS;
}

static int step(pam_handle_t *pamh, const char *who, const char *what, int rc)
{
	printf("%s %s: %s\n", who, what, pam_strerror(pamh, rc));
	fflush(stdout);
	return rc != PAM_SUCCESS;
}

int main(int argc, char **argv)
{
	struct pam_conv c = { conv, NULL };
	pam_handle_t *pamh = NULL;
	int failed = 0, status = 0;
	pid_t pid;

	if (argc != 3 || pam_start(argv[1], argv[2], &c, &pamh) != PAM_SUCCESS)
		return 2;
	if (step(pamh, "parent", "authenticate", pam_authenticate(pamh, 0)))
		return 1;
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		failed |= step(pamh, "child", "authenticate", pam_authenticate(pamh, 0));
		failed |= step(pamh, "child", "open_session", pam_open_session(pamh, 0));
		failed |= step(pamh, "child", "close_session", pam_close_session(pamh, 0));
		pam_end(pamh, PAM_SUCCESS);
		_exit(failed);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("child failed (status %#x)\n", status);
		failed = 1;
	}
	failed |= step(pamh, "parent", "close_session", pam_close_session(pamh, 0));
	pam_end(pamh, PAM_SUCCESS);
	return failed;
}
