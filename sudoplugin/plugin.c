/*
 * jit_sudo.so, C side: the sudo policy plugin struct `jit_policy` and the
 * trampolines that enter Go.
 *
 * The Go runtime starts when sudo loads this library and lives in the
 * process that loaded it. A process forked from it (sudo -b forks before it
 * runs the command, and calls the plugin again in the child) has one thread
 * and a Go runtime that believes it has many: entering Go there hangs. So
 * every entry point checks getpid() against the pid that called open and,
 * in any other process, never enters Go: it says why through sudo's printf
 * (plain C) and refuses.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sudo_plugin.h>

#include "iobatch.h"
#include "plugin.h"
#include "_cgo_export.h"

/*
 * Signals. sudo is single-threaded and relies on blocking signals in its
 * one thread to defer them: it blocks SIGCHLD before it forks the command
 * and unblocks it once its handler is in place. The Go runtime adds
 * threads; a process-directed signal goes to any thread that does not
 * block it, so a command that exits at once (sudo /bin/true) had its
 * SIGCHLD delivered to a Go thread while the disposition was still the
 * default (ignore), and sudo waited for it forever.
 *
 * Go threads start with the signal mask of the thread that started the Go
 * runtime (its initSigmask; in a c-shared library Go blocks nothing more).
 * So this constructor, which runs before the Go runtime's own initializer
 * (prioritized .init_array entries run first), blocks every signal in the
 * thread that loads the library; the Go runtime's threads inherit that and
 * only unblock what Go itself needs (synchronous faults, its preemption
 * signal). The loading thread's mask is restored when sudo calls open.
 * Every signal sent to sudo then reaches sudo's own thread, as sudo expects.
 */
static sigset_t load_mask;
static int load_mask_saved;

__attribute__((constructor(101)))
static void
block_signals_for_go(void)
{
	sigset_t all;

	sigfillset(&all);
	if (pthread_sigmask(SIG_BLOCK, &all, &load_mask) == 0)
		load_mask_saved = 1;
}

static void
restore_signals(void)
{
	if (load_mask_saved) {
		load_mask_saved = 0;
		pthread_sigmask(SIG_SETMASK, &load_mask, NULL);
	}
}

/*
 * SIGCHLD cannot be blocked in Go's threads: the runtime unblocks it in
 * every thread it starts. While sudo blocks it in its own thread (from
 * just before it forks the command until its exec-time handler is in
 * place) the kernel hands a quick command's SIGCHLD to a Go thread, where
 * sudo's early handler files it away as uninteresting: sudo then waits for
 * the command forever (seen with `sudo /bin/true`, about 1 run in 1000).
 * So open puts a forwarder in front of whatever handles SIGCHLD: on sudo's
 * own thread it calls the handler it replaced (or does nothing, like the
 * default); on any other thread it re-sends SIGCHLD to sudo's thread,
 * where it stays pending until sudo unblocks it with its exec-time handler
 * in place, exactly as in a single-threaded sudo. (Once sudo installs that
 * handler, it replaces the forwarder; it writes to a pipe, which works
 * from any thread.) SA_ONSTACK: it may run on a Go thread, which must use
 * its signal stack.
 */
static pid_t main_tid;
static struct sigaction chld_prev;

static void
forward_sigchld(int signo, siginfo_t *info, void *context)
{
	int saved_errno = errno;

	if (main_tid != 0 && (pid_t)syscall(SYS_gettid) != main_tid) {
		(void)syscall(SYS_tgkill, (pid_t)getpid(), main_tid, SIGCHLD);
	} else if (chld_prev.sa_flags & SA_SIGINFO) {
		if (chld_prev.sa_sigaction != NULL)
			chld_prev.sa_sigaction(signo, info, context);
	} else if (chld_prev.sa_handler != SIG_DFL &&
	    chld_prev.sa_handler != SIG_IGN && chld_prev.sa_handler != NULL) {
		chld_prev.sa_handler(signo);
	}
	errno = saved_errno;
}

static void
install_sigchld_forwarder(void)
{
	struct sigaction sa;

	main_tid = (pid_t)syscall(SYS_gettid);
	if (sigaction(SIGCHLD, NULL, &chld_prev) != 0)
		return;
	if (!(chld_prev.sa_flags & SA_SIGINFO) && chld_prev.sa_handler == SIG_IGN)
		return;	/* ignored children are reaped by the kernel */
	memset(&sa, 0, sizeof(sa));
	sa.sa_mask = chld_prev.sa_mask;
	sa.sa_sigaction = forward_sigchld;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK |
	    (chld_prev.sa_flags & (SA_RESTART | SA_NOCLDSTOP | SA_NOCLDWAIT));
	(void)sigaction(SIGCHLD, &sa, NULL);
}

static pid_t open_pid;
static unsigned int api_version;
static sudo_printf_t plugin_printf;
static sudo_conv_t plugin_conv;

pid_t
jit_open_pid(void)
{
	return open_pid;
}

int
jit_print(int msg_type, const char *msg)
{
	if (plugin_printf == NULL || msg == NULL)
		return -1;
	return plugin_printf(msg_type, "%s", msg);
}

int
jit_conv(int msg_type, const char *msg, char **reply)
{
	struct sudo_conv_message m;
	struct sudo_conv_reply r;
	int rc;

	*reply = NULL;
	if (plugin_conv == NULL)
		return -1;
	memset(&m, 0, sizeof(m));
	memset(&r, 0, sizeof(r));
	m.msg_type = msg_type;
	m.timeout = 0;
	m.msg = msg;
	rc = plugin_conv(1, &m, &r, NULL);
	*reply = r.reply;
	return rc == 0 ? 0 : -1;
}

/* errstr exists from API 1.15 on; before that the pointer is garbage. */
static void
set_errstr(const char **errstr, char *msg)
{
	if (msg != NULL && errstr != NULL &&
	    SUDO_API_VERSION_GET_MINOR(api_version) >= 15)
		*errstr = msg;
}

/*
 * foreign reports whether this call comes from a process other than the one
 * that opened the plugin, and if so says why nothing will happen. Never
 * enters Go.
 */
static int
foreign(const char *what, const char **errstr)
{
	static char msg[512];
	pid_t pid = getpid();

	if (open_pid != 0 && pid == open_pid)
		return 0;
	snprintf(msg, sizeof(msg),
	    "jit: refusing %s in a forked sudo process (pid %d; the plugin was "
	    "opened in pid %d): jit does not run in processes sudo forks, so "
	    "sudo -b is not supported; run `sudo CMD &` from your shell instead",
	    what, (int)pid, (int)open_pid);
	if (plugin_printf != NULL)
		plugin_printf(SUDO_CONV_ERROR_MSG, "%s\n", msg);
	set_errstr(errstr, msg);
	return 1;
}

static int
policy_open(unsigned int version, sudo_conv_t conversation,
    sudo_printf_t sudo_plugin_printf, char * const settings[],
    char * const user_info[], char * const user_env[],
    char * const plugin_options[], const char **errstr)
{
	char *msg = NULL;
	int rc;

	restore_signals();
	plugin_printf = sudo_plugin_printf;
	plugin_conv = conversation;
	api_version = version;
	if (SUDO_API_VERSION_GET_MAJOR(version) != SUDO_API_VERSION_MAJOR) {
		if (plugin_printf != NULL)
			plugin_printf(SUDO_CONV_ERROR_MSG,
			    "jit: sudo's plugin API is %u.%u, jit_sudo.so needs %d.x\n",
			    SUDO_API_VERSION_GET_MAJOR(version),
			    SUDO_API_VERSION_GET_MINOR(version),
			    SUDO_API_VERSION_MAJOR);
		return -1;
	}
	if (open_pid != 0 && open_pid != getpid()) {
		(void)foreign("open", errstr);
		return -1;
	}
	open_pid = getpid();
	install_sigchld_forwarder();
	/* plugin_options exist from API 1.2 on. */
	rc = jitGoOpen(version, (char **)settings, (char **)user_info,
	    (char **)user_env,
	    SUDO_API_VERSION_GET_MINOR(version) >= 2 ? (char **)plugin_options : NULL,
	    &msg);
	set_errstr(errstr, msg);
	return rc;
}

static void
policy_close(int exit_status, int error)
{
	if (open_pid == 0 || getpid() != open_pid)
		return;	/* a forked sudo: stay out of Go, say nothing */
	jitGoClose(exit_status, error);
}

static int
policy_show_version(int verbose)
{
	if (foreign("show_version", NULL))
		return -1;
	return jitGoShowVersion(verbose);
}

static int
policy_check(int argc, char * const argv[], char *env_add[],
    char **command_info[], char **argv_out[], char **user_env_out[],
    const char **errstr)
{
	char *msg = NULL;
	int rc;

	if (foreign("check_policy", errstr))
		return -1;
	rc = jitGoCheckPolicy(argc, (char **)argv, env_add, command_info,
	    argv_out, user_env_out, &msg);
	set_errstr(errstr, msg);
	return rc;
}

static int
policy_list(int argc, char * const argv[], int verbose, const char *user,
    const char **errstr)
{
	char *msg = NULL;
	int rc;

	if (foreign("list", errstr))
		return -1;
	rc = jitGoList(argc, (char **)argv, verbose, (char *)user, &msg);
	set_errstr(errstr, msg);
	return rc;
}

static int
policy_validate(const char **errstr)
{
	char *msg = NULL;
	int rc;

	if (foreign("validate", errstr))
		return -1;
	rc = jitGoValidate(&msg);
	set_errstr(errstr, msg);
	return rc;
}

static void
policy_invalidate(int rmcred)
{
	if (foreign("invalidate", NULL))
		return;
	jitGoInvalidate(rmcred);
}

/*
 * init_session runs right before sudo forks the command. Its only job here
 * is the second line of the pid guard: with sudo -b, sudo has already
 * forked into the background when it gets here, so a foreign pid means the
 * command must not start.
 */
static int
policy_init_session(struct passwd *pwd, char **user_env_out[],
    const char **errstr)
{
	if (foreign("to start the command", errstr))
		return -1;
	return 1;
}

/* sudo looks this symbol up by name (sudo.conf: Plugin jit_policy ...). It
 * must be a writable global: sudo fills in event_alloc. */
struct policy_plugin jit_policy = {
	SUDO_POLICY_PLUGIN,
	SUDO_API_VERSION,
	policy_open,
	policy_close,
	policy_show_version,
	policy_check,
	policy_list,
	policy_validate,
	policy_invalidate,
	policy_init_session,
	NULL,	/* register_hooks */
	NULL,	/* deregister_hooks */
	NULL	/* event_alloc: filled in by sudo */
};

/*
 * The I/O plugin jit_io (io.go): records the command's terminal and
 * standard streams to journald. Same pid guard as the policy: nothing
 * enters Go outside the process that opened the plugins. sudo opens it only
 * after jit_policy's check_policy allowed a command, in the same process.
 */
static int
io_open(unsigned int version, sudo_conv_t conversation,
    sudo_printf_t sudo_plugin_printf, char * const settings[],
    char * const user_info[], char * const command_info[],
    int argc, char * const argv[], char * const user_env[],
    char * const plugin_options[], const char **errstr)
{
	char *msg = NULL;
	int rc;

	restore_signals();	/* a no-op after policy_open */
	if (plugin_printf == NULL)
		plugin_printf = sudo_plugin_printf;
	if (plugin_conv == NULL)
		plugin_conv = conversation;
	if (api_version == 0)
		api_version = version;
	if (open_pid == 0) {
		/* sudo -V with another policy plugin: nothing to record. */
		return argc == 0 ? 1 : -1;
	}
	if (foreign("to record the session", errstr))
		return -1;
	rc = jitGoIOOpen(argc, (char **)user_info, (char **)command_info,
	    SUDO_API_VERSION_GET_MINOR(version) >= 2 ? (char **)plugin_options : NULL,
	    &msg);
	set_errstr(errstr, msg);
	return rc;
}

static void
io_close(int exit_status, int error)
{
	if (open_pid == 0 || getpid() != open_pid)
		return;
	jitGoIOClose(exit_status, error);
}

static int
io_show_version(int verbose)
{
	if (foreign("show_version", NULL))
		return -1;
	return jitGoIOShowVersion(verbose);
}

/* Streams, in the order of recording.Streams. */
enum { JIT_TTYIN, JIT_TTYOUT, JIT_STDIN, JIT_STDOUT, JIT_STDERR };

/* io_log records the call in C when it fits (iobatch.c), entering Go only
 * to arm the flush timer for a new batch, or for a call that does not fit
 * (Go then takes the batch first, so the order holds). */
static int
io_log(int stream, const char *buf, unsigned int len, const char **errstr)
{
	char *msg = NULL;
	int rc;

	if (foreign("to record the session", errstr))
		return -1;
	switch (jit_batch_add(stream, buf, len)) {
	case JIT_BATCH_ADDED:
		return 1;
	case JIT_BATCH_FIRST:
		rc = jitGoIOArm(&msg);
		break;
	default:
		rc = jitGoIOLog(stream, (char *)buf, len, &msg);
	}
	set_errstr(errstr, msg);
	return rc;
}

static int
io_log_ttyin(const char *buf, unsigned int len, const char **errstr)
{
	return io_log(JIT_TTYIN, buf, len, errstr);
}

static int
io_log_ttyout(const char *buf, unsigned int len, const char **errstr)
{
	return io_log(JIT_TTYOUT, buf, len, errstr);
}

static int
io_log_stdin(const char *buf, unsigned int len, const char **errstr)
{
	return io_log(JIT_STDIN, buf, len, errstr);
}

static int
io_log_stdout(const char *buf, unsigned int len, const char **errstr)
{
	return io_log(JIT_STDOUT, buf, len, errstr);
}

static int
io_log_stderr(const char *buf, unsigned int len, const char **errstr)
{
	return io_log(JIT_STDERR, buf, len, errstr);
}

static int
io_change_winsize(unsigned int lines, unsigned int cols, const char **errstr)
{
	char *msg = NULL;
	int rc;

	if (foreign("to record the session", errstr))
		return -1;
	rc = jitGoIOWinsize(lines, cols, &msg);
	set_errstr(errstr, msg);
	return rc;
}

static int
io_log_suspend(int signo, const char **errstr)
{
	char *msg = NULL;
	int rc;

	if (foreign("to record the session", errstr))
		return -1;
	rc = jitGoIOSuspend(signo, &msg);
	set_errstr(errstr, msg);
	return rc;
}

/* sudo looks this symbol up by name (sudo.conf: Plugin jit_io ...); a
 * writable global, like jit_policy. */
struct io_plugin jit_io = {
	SUDO_IO_PLUGIN,
	SUDO_API_VERSION,
	io_open,
	io_close,
	io_show_version,
	io_log_ttyin,
	io_log_ttyout,
	io_log_stdin,
	io_log_stdout,
	io_log_stderr,
	NULL,	/* register_hooks */
	NULL,	/* deregister_hooks */
	io_change_winsize,
	io_log_suspend,
	NULL	/* event_alloc: filled in by sudo */
};
