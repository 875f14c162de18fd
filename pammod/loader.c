/*
 * pam_jit.so: the small C loader of jit's PAM module.
 *
 * Go code loaded straight into a forking PAM host (sshd, login, su, cron)
 * deadlocks once the Go runtime has started and the host forks: the child
 * has only the forking thread, and the first call into Go waits forever
 * for runtime threads that do not exist (golang/go#15538). So this file
 * holds no Go. It loads the Go core, pam_jit_core.so, from its own
 * directory on the first call that needs it, and enters Go only from the
 * process in which the Go runtime started (the core records that pid in a
 * C constructor, jit_core_pid). A call from any other pid never enters Go:
 *
 *   setcred            PAM_SUCCESS (always answered here; it needs no Go)
 *   session open/close PAM_IGNORE (logged)
 *   account            PAM_IGNORE when this process already let the same
 *                      user through jit before it forked (the verdict
 *                      stands), or the user is root or in exempt_group=;
 *                      otherwise PAM_PERM_DENIED: a login nobody checked
 *                      must not pass (fail closed)
 *   auth, chauthtok    PAM_IGNORE (jit takes no part in them; never loads Go)
 *
 * A core that is missing, not a regular file, not owned by root, group- or
 * world-writable (or in such a directory), or that does not load, is never
 * used. Account then fails closed (PAM_PERM_DENIED with a message) except
 * for root and members of exempt_group=, who pass; session open fails
 * (PAM_SESSION_ERR) except for them (PAM_IGNORE); close is PAM_IGNORE.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define PAM_SM_ACCOUNT
#define PAM_SM_SESSION
#define PAM_SM_AUTH
#define PAM_SM_PASSWORD
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <security/pam_modutil.h>

#define CORE_NAME "pam_jit_core.so"
#define UNUSED __attribute__((unused))

typedef int (*core_fn)(pam_handle_t *, int, int, const char **);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	void *handle;
	pid_t (*pid)(void);
	core_fn acct, open, close;
} core;
/* The last user whom the core let through account in its own pid, kept
 * so that a forked child can tell "already checked" from "never checked". */
static char allowed_user[256];

static int debug_on(int argc, const char **argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "debug") == 0)
			return 1;
	return 0;
}

static const char *arg_value(int argc, const char **argv, const char *key)
{
	size_t n = strlen(key);
	for (int i = 0; i < argc; i++)
		if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=')
			return argv[i] + n + 1;
	return NULL;
}

/* safe_path: a root-owned regular file (or directory) that nobody else may
 * write. */
static int safe_path(pam_handle_t *pamh, const char *path, int dir)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		pam_syslog(pamh, LOG_ERR, "cannot use %s: %m", path);
		return 0;
	}
	if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
		pam_syslog(pamh, LOG_ERR, "refusing %s: not a %s", path, dir ? "directory" : "regular file");
		return 0;
	}
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		pam_syslog(pamh, LOG_ERR, "refusing %s: it must be owned by root and not group- or world-writable (owner %u, mode %04o)",
			   path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		return 0;
	}
	return 1;
}

/* load_core dlopens the core beside this file once; it returns 0 when the
 * core cannot be used. Callers hold lock. */
static int load_core(pam_handle_t *pamh)
{
	Dl_info info;
	char self[PATH_MAX], dir[PATH_MAX], path[PATH_MAX + sizeof(CORE_NAME)];

	if (core.handle != NULL)
		return 1;
	if (dladdr((void *)&load_core, &info) == 0 || info.dli_fname == NULL) {
		pam_syslog(pamh, LOG_ERR, "cannot find where pam_jit.so was loaded from");
		return 0;
	}
	if (realpath(info.dli_fname, self) == NULL) {
		pam_syslog(pamh, LOG_ERR, "cannot resolve %s: %m", info.dli_fname);
		return 0;
	}
	/* Stay loaded: the state above must outlive pam_end's dlclose, or a
	 * reloaded copy in a forked child would forget what it knew. */
	(void)dlopen(self, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
	strcpy(dir, self);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		return 0;
	*slash = '\0';
	snprintf(path, sizeof(path), "%s/%s", dir, CORE_NAME);
	if (!safe_path(pamh, dir[0] ? dir : "/", 1) || !safe_path(pamh, path, 0))
		return 0;
	/* A Go runtime can never be unloaded: RTLD_NODELETE, and no dlclose. */
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (h == NULL) {
		pam_syslog(pamh, LOG_ERR, "cannot load %s: %s", path, dlerror());
		return 0;
	}
	core.pid = (pid_t(*)(void))dlsym(h, "jit_core_pid");
	core.acct = (core_fn)dlsym(h, "jit_core_acct_mgmt");
	core.open = (core_fn)dlsym(h, "jit_core_open_session");
	core.close = (core_fn)dlsym(h, "jit_core_close_session");
	if (core.pid == NULL || core.acct == NULL || core.open == NULL || core.close == NULL) {
		pam_syslog(pamh, LOG_ERR, "%s lacks the jit_core_* entry points: wrong or stale build", path);
		core.pid = NULL;
		return 0;
	}
	core.handle = h;
	return 1;
}

/* exempt: root and members of exempt_group= are never locked out by a jit
 * that cannot answer. */
static int exempt(pam_handle_t *pamh, int argc, const char **argv)
{
	const char *user = NULL, *group = arg_value(argc, argv, "exempt_group");
	if (pam_get_item(pamh, PAM_USER, (const void **)&user) != PAM_SUCCESS || user == NULL || *user == '\0')
		return 0;
	struct passwd *pw = pam_modutil_getpwnam(pamh, user);
	if (pw != NULL && pw->pw_uid == 0)
		return 1;
	return group != NULL && *group != '\0' && pam_modutil_user_in_group_nam_nam(pamh, user, group);
}

static void tell(pam_handle_t *pamh, int flags, const char *msg)
{
	if (!(flags & PAM_SILENT))
		pam_error(pamh, "%s", msg);
}

enum op { OP_ACCT, OP_OPEN, OP_CLOSE };
static const char *const op_name[] = {"account", "session open", "session close"};

static int dispatch(enum op op, pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	pthread_mutex_lock(&lock);
	int loaded = load_core(pamh);
	pthread_mutex_unlock(&lock);

	if (!loaded) {
		int ex = exempt(pamh, argc, argv);
		switch (op) {
		case OP_ACCT:
			if (ex) {
				pam_syslog(pamh, LOG_WARNING, "jit core unusable (see above): letting root/exempt_group user through");
				return PAM_SUCCESS;
			}
			tell(pamh, flags, "jit: login refused: jit's PAM module is not installed correctly, so nobody can check your login. Ask an administrator.");
			return PAM_PERM_DENIED;
		case OP_OPEN:
			return ex ? PAM_IGNORE : PAM_SESSION_ERR;
		default:
			return PAM_IGNORE;
		}
	}

	pid_t self = getpid(), owner = core.pid();
	if (self == owner) {
		core_fn fn = op == OP_ACCT ? core.acct : op == OP_OPEN ? core.open : core.close;
		int rc = fn(pamh, flags, argc, argv);
		if (op == OP_ACCT) {
			const char *user = NULL;
			allowed_user[0] = '\0';
			if (rc == PAM_SUCCESS && pam_get_item(pamh, PAM_USER, (const void **)&user) == PAM_SUCCESS &&
			    user != NULL && strlen(user) < sizeof(allowed_user))
				strcpy(allowed_user, user);
		}
		return rc;
	}

	/* A forked child of the process where Go runs: never enter Go. */
	if (op != OP_ACCT) {
		pam_syslog(pamh, LOG_NOTICE, "%s in pid %d, a fork of pid %d where jit's Go core runs: not entering Go, returning PAM_IGNORE",
			   op_name[op], (int)self, (int)owner);
		return PAM_IGNORE;
	}
	const char *user = NULL;
	(void)pam_get_item(pamh, PAM_USER, (const void **)&user);
	if (user != NULL && allowed_user[0] != '\0' && strcmp(user, allowed_user) == 0) {
		pam_syslog(pamh, LOG_NOTICE, "account in pid %d, a fork of pid %d where jit already let %s through: returning PAM_IGNORE",
			   (int)self, (int)owner, user);
		return PAM_IGNORE;
	}
	if (exempt(pamh, argc, argv)) {
		pam_syslog(pamh, LOG_NOTICE, "account in pid %d, a fork of pid %d where jit's Go core runs: root/exempt_group user, returning PAM_IGNORE",
			   (int)self, (int)owner);
		return PAM_IGNORE;
	}
	pam_syslog(pamh, LOG_ERR, "account for %s in pid %d, a fork of pid %d where jit's Go core runs: cannot check here, refusing",
		   user ? user : "(unknown user)", (int)self, (int)owner);
	tell(pamh, flags, "jit: login refused: this program asked jit from a forked process, where it cannot check logins. Ask an administrator.");
	return PAM_PERM_DENIED;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return dispatch(OP_ACCT, pamh, flags, argc, argv);
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return dispatch(OP_OPEN, pamh, flags, argc, argv);
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return dispatch(OP_CLOSE, pamh, flags, argc, argv);
}

/* setcred needs nothing from jitd: success in every process, without Go. */
PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags UNUSED, int argc, const char **argv)
{
	if (debug_on(argc, argv) && core.pid != NULL && core.pid() != getpid())
		pam_syslog(pamh, LOG_DEBUG, "setcred in pid %d, a fork of pid %d where jit's Go core runs: PAM_SUCCESS without Go",
			   (int)getpid(), (int)core.pid());
	return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh UNUSED, int flags UNUSED, int argc UNUSED, const char **argv UNUSED)
{
	return PAM_IGNORE;
}

PAM_EXTERN int pam_sm_chauthtok(pam_handle_t *pamh UNUSED, int flags UNUSED, int argc UNUSED, const char **argv UNUSED)
{
	return PAM_IGNORE;
}
