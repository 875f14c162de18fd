/*
 * pamprobe: drives PAM step by step for pam_jit's tests, printing what each
 * step returned.
 *
 *   pamprobe SERVICE USER OP...
 *
 * Each OP goes through libpam's stack for SERVICE (pam_acct_mgmt, ...).
 * (A module cannot be called directly: libpam refuses pam_get_data and
 * pam_set_data outside its own dispatch.) To see a module's PAM_IGNORE,
 * the tests' stacks follow it with pam_echo, whose message shows. OPs:
 *
 *   acct open close setcred auth   one PAM call each
 *   fork                           fork; the child runs the remaining OPs,
 *                                  the parent waits for it and stops
 *   user=NAME rhost=NAME tty=NAME  set a PAM item (rhost=@big: 2 MiB)
 *   sigpipe=default                SIGPIPE back to SIG_DFL, as a host may
 *   env                            print the PAM environment
 *   core                           "core=loaded" when pam_jit_core.so (and
 *                                  with it the Go runtime) is mapped in this
 *                                  process, "core=absent" otherwise
 *
 * Output: one line per step, "pid=N OP=CODE", CODE being the PAM_* name;
 * messages the module sent print as "msg=TEXT". Exit status 0 unless
 * something other than a PAM step failed.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <security/pam_appl.h>

static const char *code_name(int rc)
{
	switch (rc) {
	case PAM_SUCCESS: return "PAM_SUCCESS";
	case PAM_IGNORE: return "PAM_IGNORE";
	case PAM_PERM_DENIED: return "PAM_PERM_DENIED";
	case PAM_SESSION_ERR: return "PAM_SESSION_ERR";
	case PAM_USER_UNKNOWN: return "PAM_USER_UNKNOWN";
	case PAM_SYSTEM_ERR: return "PAM_SYSTEM_ERR";
	case PAM_SERVICE_ERR: return "PAM_SERVICE_ERR";
	case PAM_AUTH_ERR: return "PAM_AUTH_ERR";
	case PAM_CRED_ERR: return "PAM_CRED_ERR";
	case PAM_ACCT_EXPIRED: return "PAM_ACCT_EXPIRED";
	case PAM_BUF_ERR: return "PAM_BUF_ERR";
	default: return "PAM_OTHER";
	}
}

static int core_mapped(void)
{
	char line[4096];
	int found = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	if (f == NULL)
		return -1;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, "/pam_jit_core.so") != NULL;
	fclose(f);
	return found;
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	(void)data;
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		printf("pid=%d msg=%s\n", (int)getpid(), msg[i]->msg ? msg[i]->msg : "");
		fflush(stdout);
	}
	*resp = r;
	return PAM_SUCCESS;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: pamprobe SERVICE USER OP...\n");
		return 2;
	}
	const char *service = argv[1], *user = argv[2];
	int first_op = 3, end_ops = argc;

	struct pam_conv c = {conv, NULL};
	pam_handle_t *pamh = NULL;
	int rc = pam_start(service, user, &c, &pamh);
	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "pamprobe: pam_start: %s\n", pam_strerror(pamh, rc));
		return 1;
	}
	pam_set_item(pamh, PAM_TTY, "pamprobe");

	for (int j = first_op; j < end_ops; j++) {
		const char *op = argv[j];
		if (strcmp(op, "fork") == 0) {
			fflush(stdout);
			pid_t pid = fork();
			if (pid < 0) {
				perror("pamprobe: fork");
				return 1;
			}
			if (pid > 0) {
				int st = 0;
				if (waitpid(pid, &st, 0) < 0) {
					perror("pamprobe: waitpid");
					return 1;
				}
				if (WIFSIGNALED(st))
					printf("pid=%d child=signal %d\n", (int)getpid(), WTERMSIG(st));
				else
					printf("pid=%d child=exit %d\n", (int)getpid(), WEXITSTATUS(st));
				return 0;
			}
			printf("pid=%d forked\n", (int)getpid());
			continue;
		}
		if (strncmp(op, "user=", 5) == 0 || strncmp(op, "rhost=", 6) == 0 || strncmp(op, "tty=", 4) == 0) {
			int item = op[0] == 'u' ? PAM_USER : op[0] == 'r' ? PAM_RHOST : PAM_TTY;
			const char *v = strchr(op, '=') + 1;
			char *big = NULL;
			if (strcmp(v, "@big") == 0) {
				size_t n = 2u << 20;
				big = malloc(n + 1);
				if (big == NULL)
					return 1;
				memset(big, 'h', n);
				big[n] = '\0';
				v = big;
			}
			rc = pam_set_item(pamh, item, v);
			free(big);
			if (rc != PAM_SUCCESS) {
				fprintf(stderr, "pamprobe: pam_set_item: %s\n", pam_strerror(pamh, rc));
				return 1;
			}
			continue;
		}
		if (strcmp(op, "sigpipe=default") == 0) {
			signal(SIGPIPE, SIG_DFL);
			continue;
		}
		if (strcmp(op, "core") == 0) {
			printf("pid=%d core=%s\n", (int)getpid(), core_mapped() ? "loaded" : "absent");
			fflush(stdout);
			continue;
		}
		if (strcmp(op, "env") == 0) {
			char **env = pam_getenvlist(pamh);
			for (char **e = env; e && *e; e++) {
				printf("pid=%d env=%s\n", (int)getpid(), *e);
				free(*e);
			}
			free(env);
			continue;
		}
		if (strcmp(op, "acct") == 0) {
			rc = pam_acct_mgmt(pamh, 0);
		} else if (strcmp(op, "open") == 0) {
			rc = pam_open_session(pamh, 0);
		} else if (strcmp(op, "close") == 0) {
			rc = pam_close_session(pamh, 0);
		} else if (strcmp(op, "setcred") == 0) {
			rc = pam_setcred(pamh, PAM_ESTABLISH_CRED);
		} else if (strcmp(op, "auth") == 0) {
			rc = pam_authenticate(pamh, 0);
		} else {
			fprintf(stderr, "pamprobe: unknown op %s\n", op);
			return 2;
		}
		printf("pid=%d %s=%s\n", (int)getpid(), op, code_name(rc));
		fflush(stdout);
	}
	pam_end(pamh, PAM_SUCCESS);
	return 0;
}
