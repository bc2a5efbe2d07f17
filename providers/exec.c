/*
 * exec.c - the exec provider: an operator's program publishes and removes each record, run as
 * `command ensure|remove FQDN VALUE` on a pool thread (never on a worker's loop).
 *
 * Settings: "command" (absolute path of an executable, required), "timeout" (seconds) [60],
 * "env" (an object of variables for the program, NAME: "value").
 *
 * The program runs without a shell (posix_spawn), in its own process group, with stdin and
 * stdout on /dev/null and no file descriptor of certfleet's but stderr, whose start (up to 200
 * octets, escaped with cf_quote) goes into the error message. Exit 0 is success, 75 (EX_TEMPFAIL)
 * a failure worth retrying, any other status a permanent failure. At the timeout its whole
 * process group is killed (SIGKILL) and the failure is retryable.
 *
 * The environment: the program gets PATH, HOME, LANG and LC_ALL from certfleet's own (those set),
 * then the account's "env" settings, and nothing else: certfleet's environment holds secrets that
 * are not the program's (CERTFLEET_DB with a password, PGPASSWORD, variables that other accounts'
 * *_env settings name). The record itself comes as arguments. The environment is built once, when
 * the account opens; "env" may override PATH and the others.
 *
 * Known limits: one process per record (batch_max 1). A program that leaves a child in the
 * background is not waited for (only the program itself is), nor is the child killed unless the
 * timeout strikes. Being in a process group of its own, the program does not get the Ctrl-C
 * typed at certfleet's terminal; certfleet waits for it, at most the timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "provider.h"

#define EXEC_DEFAULT_TIMEOUT_S 60
#define EXEC_MAX_TIMEOUT_S 86400
#define EXEC_STDERR_MAX 300      /* octets of stderr kept (more than quoted: shows the cut) */
#define EXEC_QUOTE_MAX 200       /* of which at most this many are quoted (the message is 512) */
#define EXEC_TEMPFAIL 75         /* EX_TEMPFAIL of sysexits.h */
#define EXEC_POLL_MS 50          /* how often the exit is checked without a pidfd */
#define EXEC_ENV_MAX 64          /* variables in "env" */

/* What the program inherits from certfleet's environment, when set; nothing else is passed. */
static const char *const exec_inherited[] = { "PATH", "HOME", "LANG", "LC_ALL", NULL };

/* An account's parsed settings. */
struct exec_state {
	char *command;             /* absolute path */
	const char *base;          /* its last component, for messages */
	int64_t timeout_ms;
	char **envp;               /* the program's environment, NULL-terminated */
};

/* How one run ended. */
struct exec_outcome {
	int spawn_errno;           /* posix_spawn failed with this; 0 = it ran */
	bool timed_out;            /* killed at the timeout */
	int status;                /* waitpid status when it ran and was not killed by us */
	char err[EXEC_STDERR_MAX + 1]; /* the start of its stderr */
	size_t errlen;
};

static void
exec_state_free(struct exec_state *st)
{
	if (st == NULL)
		return;
	free(st->command);
	for (char **e = st->envp; e && *e; e++)
		free(*e);
	free(st->envp);
	free(st);
}

/* True when name is a portable environment variable name: [A-Za-z_][A-Za-z0-9_]*. */
static bool
exec_env_name_ok(const char *name)
{
	if (!((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return false;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
		    *c == '_'))
			return false;
	return true;
}

/* Appends "name=value" to st->envp (room was made for it). */
static int
exec_env_add(struct exec_state *st, size_t *n, const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 2;
	char *kv = malloc(len);

	if (kv == NULL)
		return -1;
	snprintf(kv, len, "%s=%s", name, value);
	st->envp[(*n)++] = kv;
	return 0;
}

/*
 * The program's environment: the inherited variables that are set and that "env" does not name,
 * then "env". Validates "env": an object of at most EXEC_ENV_MAX names to strings.
 */
static int
exec_env_build(struct provider_account *acct, struct exec_state *st, cf_err *err)
{
	json_t *env = json_object_get(acct->settings, "env"), *v;
	const char *name;
	size_t n = 0, cap = sizeof(exec_inherited) / sizeof(exec_inherited[0]);

	if (env != NULL && !json_is_object(env)) {
		cf_errf(err, "provider %s: \"env\" must be an object of NAME: \"value\"", acct->name);
		return -1;
	}
	if (env != NULL && json_object_size(env) > EXEC_ENV_MAX) {
		cf_errf(err, "provider %s: \"env\" has more than %d variables", acct->name, EXEC_ENV_MAX);
		return -1;
	}
	json_object_foreach(env, name, v) {
		const char *s = json_string_value(v);
		if (!exec_env_name_ok(name)) {
			cf_errf(err, "provider %s: \"env\": \"%.64s\" is not a variable name "
			    "([A-Za-z_][A-Za-z0-9_]*)", acct->name, name);
			return -1;
		}
		if (s == NULL || strlen(s) != json_string_length(v)) {
			cf_errf(err, "provider %s: \"env\": %s must be a string without NUL", acct->name, name);
			return -1;
		}
	}
	cap += json_object_size(env);
	if ((st->envp = calloc(cap, sizeof(*st->envp))) == NULL)
		goto oom;
	for (size_t i = 0; exec_inherited[i]; i++) {
		const char *val = getenv(exec_inherited[i]);
		if (val != NULL && json_object_get(env, exec_inherited[i]) == NULL &&
		    exec_env_add(st, &n, exec_inherited[i], val) != 0)
			goto oom;
	}
	json_object_foreach(env, name, v)
		if (exec_env_add(st, &n, name, json_string_value(v)) != 0)
			goto oom;
	return 0;
oom:
	cf_errf(err, "provider %s: out of memory", acct->name);
	return -1;
}

static int
exec_open(struct provider_account *acct, cf_err *err)
{
	struct exec_state *st = NULL;
	const char *cmd = provider_setting(acct, "command");
	json_t *t = json_object_get(acct->settings, "timeout");
	struct stat sb;
	double secs = EXEC_DEFAULT_TIMEOUT_S;
	int rc = -1;

	if (cmd == NULL || cmd[0] != '/') {
		cf_errf(err, "provider %s: \"command\" must be the absolute path of a program",
		    acct->name);
		goto out;
	}
	if (stat(cmd, &sb) != 0) {
		cf_errf(err, "provider %s: stat \"command\" %s: %s", acct->name, cmd, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || access(cmd, X_OK) != 0) {
		cf_errf(err, "provider %s: \"command\" %s is not an executable file", acct->name, cmd);
		goto out;
	}
	if (t != NULL) {
		secs = json_is_number(t) ? json_number_value(t) : -1;
		if (!(secs > 0 && secs <= EXEC_MAX_TIMEOUT_S)) {
			cf_errf(err, "provider %s: \"timeout\" must be a number of seconds above 0 and "
			    "at most %d", acct->name, EXEC_MAX_TIMEOUT_S);
			goto out;
		}
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL || (st->command = strdup(cmd)) == NULL) {
		cf_errf(err, "provider %s: out of memory", acct->name);
		goto out;
	}
	st->base = strrchr(st->command, '/') + 1;
	st->timeout_ms = (int64_t)(secs * 1000);
	if (st->timeout_ms < 1)
		st->timeout_ms = 1;
	if (exec_env_build(acct, st, err) != 0)
		goto out;
	acct->state = st;
	st = NULL;
	rc = 0;
out:
	exec_state_free(st);
	return rc;
}

static void
exec_close(struct provider_account *acct)
{
	exec_state_free(acct->state);
	acct->state = NULL;
}

/* A pidfd for pid (readable once it exits), or -1 where the kernel has none. */
static int
exec_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	return -1;
#endif
}

/* Reads what fd has into o->err (the rest is dropped); false at end of file or on error. */
static bool
exec_read_stderr(int fd, struct exec_outcome *o)
{
	char scratch[4096];
	ssize_t n;

	for (;;) {
		n = read(fd, scratch, sizeof(scratch));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0)
			return false;
		if (o->errlen < EXEC_STDERR_MAX) {
			size_t k = (size_t)n < EXEC_STDERR_MAX - o->errlen ? (size_t)n : EXEC_STDERR_MAX - o->errlen;
			memcpy(o->err + o->errlen, scratch, k);
			o->errlen += k;
			o->err[o->errlen] = '\0';
		}
		return true;
	}
}

/* The child's descriptors: stdin and stdout on /dev/null, stderr into errfd, nothing else. */
static int
exec_file_actions(posix_spawn_file_actions_t *fa, int errfd, bool *fa_init)
{
	int e = posix_spawn_file_actions_init(fa);

	*fa_init = e == 0;
	if (e == 0)
		e = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
	if (e == 0)
		e = posix_spawn_file_actions_addopen(fa, 1, "/dev/null", O_WRONLY, 0);
	if (e == 0)
		e = posix_spawn_file_actions_adddup2(fa, errfd, 2);
	/* whatever another thread opened without O_CLOEXEC must not leak into the program */
	if (e == 0)
		e = posix_spawn_file_actions_addclosefrom_np(fa, 3);
	return e;
}

/*
 * The child's signals and process group: an empty mask, the default action for the signals
 * certfleet handles or ignores, and a process group of its own (killed whole at the timeout).
 */
static int
exec_attrs(posix_spawnattr_t *attr, bool *attr_init)
{
	sigset_t none, dfl;
	int e = posix_spawnattr_init(attr);

	*attr_init = e == 0;
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGQUIT);
	sigaddset(&dfl, SIGCHLD);
	sigaddset(&dfl, SIGALRM);
	sigaddset(&dfl, SIGUSR1);
	sigaddset(&dfl, SIGUSR2);
	if (e == 0)
		e = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
		    POSIX_SPAWN_SETPGROUP);
	if (e == 0)
		e = posix_spawnattr_setsigmask(attr, &none);
	if (e == 0)
		e = posix_spawnattr_setsigdefault(attr, &dfl);
	if (e == 0)
		e = posix_spawnattr_setpgroup(attr, 0);
	return e;
}

/* Starts argv with its stderr into errfd; the pid, or -1 with o->spawn_errno set. */
static pid_t
exec_spawn(char *const argv[], char *const envp[], int errfd, struct exec_outcome *o)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	bool fa_init = false, attr_init = false;
	pid_t pid = -1;
	int e;

	e = exec_file_actions(&fa, errfd, &fa_init);
	if (e == 0)
		e = exec_attrs(&attr, &attr_init);
	if (e == 0)
		e = posix_spawn(&pid, argv[0], &fa, &attr, argv, envp);
	if (e != 0) {
		o->spawn_errno = e;
		pid = -1;
	}
	if (fa_init)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_init)
		posix_spawnattr_destroy(&attr);
	return pid;
}

/*
 * Reads stderr (*errfd, closed and set to -1 at its end) until the program exits or the time is
 * up, when its process group is killed. True when the program was reaped here (without a pidfd,
 * by waitpid), so that it must not be waited for again.
 */
static bool
exec_wait(pid_t pid, int *errfd, int pidfd, int64_t deadline, struct exec_outcome *o)
{
	bool exited = false;

	while (!exited) {
		struct pollfd pfd[2];
		nfds_t n = 0;
		int64_t left = deadline - cf_mono_ms();
		int wait_ms;

		if (left <= 0) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			o->timed_out = true;
			return false;
		}
		wait_ms = left > INT_MAX ? INT_MAX : (int)left;
		if (pidfd < 0 && wait_ms > EXEC_POLL_MS)
			wait_ms = EXEC_POLL_MS;
		if (*errfd >= 0)
			pfd[n++] = (struct pollfd){ .fd = *errfd, .events = POLLIN };
		if (pidfd >= 0)
			pfd[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		/* a failing poll (it should not) still waits, so that this never spins */
		if (poll(pfd, n, wait_ms) < 0 && errno != EINTR)
			(void)poll(NULL, 0, EXEC_POLL_MS);
		if (*errfd >= 0 && !exec_read_stderr(*errfd, o)) {
			close(*errfd);
			*errfd = -1;
		}
		if (pidfd >= 0)
			exited = pfd[n - 1].revents != 0;
		else
			exited = waitpid(pid, &o->status, WNOHANG) == pid;
	}
	return pidfd < 0;
}

/* What the program wrote just before exiting, as much as is kept. */
static void
exec_drain(int errfd, struct exec_outcome *o)
{
	while (exec_read_stderr(errfd, o) && o->errlen < EXEC_STDERR_MAX)
		if (poll(&(struct pollfd){ .fd = errfd, .events = POLLIN }, 1, 0) <= 0)
			break;
}

/* Waits for pid, which has ended or been killed; its status unless killed at the timeout. */
static void
exec_reap(pid_t pid, struct exec_outcome *o)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!o->timed_out)
		o->status = st;
}

/*
 * Runs argv (argv[0] = the command) with the environment envp in a process group of its own,
 * with stdin and stdout on /dev/null and stderr into a pipe, and waits for it at most timeout_ms (then kills the group).
 * Fills o; returns -1 only when the program could not be started (o->spawn_errno).
 */
static int
exec_run(char *const argv[], char *const envp[], int64_t timeout_ms, struct exec_outcome *o)
{
	int fds[2] = { -1, -1 }, pidfd = -1, rc = -1;
	pid_t pid = -1;
	int64_t deadline = cf_mono_ms() + timeout_ms;

	memset(o, 0, sizeof(*o));
	if (pipe2(fds, O_CLOEXEC) != 0) {
		o->spawn_errno = errno;
		goto out;
	}
	if ((pid = exec_spawn(argv, envp, fds[1], o)) < 0)
		goto out;
	close(fds[1]);
	fds[1] = -1;
	pidfd = exec_pidfd(pid);
	(void)fcntl(fds[0], F_SETFL, O_NONBLOCK);
	if (exec_wait(pid, &fds[0], pidfd, deadline, o))
		pid = -1; /* reaped */
	if (fds[0] >= 0)
		exec_drain(fds[0], o);
	rc = 0;
out:
	if (pid > 0)
		exec_reap(pid, o);
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	if (pidfd >= 0)
		close(pidfd);
	return rc;
}

/* Runs the command for rec; records a failure on call and returns -1 when it did not succeed. */
static int
exec_record(struct provider_call *call, const struct provider_record *rec)
{
	const struct exec_state *st = call->acct->state;
	const char *action = call->action == PROVIDER_ENSURE ? "ensure" : "remove";
	const char *acct = call->acct->name;
	char *argv[] = { st->command, (char *)action, rec->fqdn, rec->value, NULL };
	struct exec_outcome o;
	char q[4 * EXEC_QUOTE_MAX + 8], errbuf[128], tail[4 * EXEC_QUOTE_MAX + 32] = "";
	size_t n;

	if (exec_run(argv, st->envp, st->timeout_ms, &o) != 0) {
		int e = o.spawn_errno;
		bool transient = e == EAGAIN || e == ENOMEM || e == EMFILE || e == ENFILE;
		provider_call_fail(call, transient, -1, "exec account %s: posix_spawn %s for %s %s: %s",
		    acct, st->command, action, rec->fqdn, strerror_r(e, errbuf, sizeof(errbuf)));
		return -1;
	}
	/* the stderr excerpt, without trailing blank lines */
	n = o.errlen;
	while (n > 0 && (o.err[n - 1] == '\n' || o.err[n - 1] == '\r' || o.err[n - 1] == ' ' ||
	    o.err[n - 1] == '\t'))
		n--;
	if (n > 0) {
		cf_quote(q, sizeof(q), o.err, n, EXEC_QUOTE_MAX);
		snprintf(tail, sizeof(tail), ": stderr \"%s\"", q);
	}
	if (o.timed_out) {
		provider_call_fail(call, true, -1, "exec account %s: %s %s %s: still running after the "
		    "timeout (%g s), killed%s", acct, st->base, action, rec->fqdn,
		    (double)st->timeout_ms / 1000, tail);
		return -1;
	}
	if (WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0)
		return 0;
	if (WIFEXITED(o.status) && WEXITSTATUS(o.status) == EXEC_TEMPFAIL)
		provider_call_fail(call, true, -1, "exec account %s: %s %s %s: exit status 75 "
		    "(temporary failure)%s", acct, st->base, action, rec->fqdn, tail);
	else if (WIFEXITED(o.status))
		provider_call_fail(call, false, -1, "exec account %s: %s %s %s: exit status %d%s", acct,
		    st->base, action, rec->fqdn, WEXITSTATUS(o.status), tail);
	else if (WIFSIGNALED(o.status))
		provider_call_fail(call, false, -1, "exec account %s: %s %s %s: killed by signal %d "
		    "(SIG%s)%s", acct, st->base, action, rec->fqdn, WTERMSIG(o.status),
		    sigabbrev_np(WTERMSIG(o.status)) ? sigabbrev_np(WTERMSIG(o.status)) : "?", tail);
	else
		provider_call_fail(call, false, -1, "exec account %s: %s %s %s: ended with wait status "
		    "%#x%s", acct, st->base, action, rec->fqdn, (unsigned)o.status, tail);
	return -1;
}

/* On a pool thread: each record in turn, stopping at the first failure. */
static void
exec_work(void *arg)
{
	struct provider_call *call = arg;
	size_t i;

	for (i = 0; i < call->nrec; i++)
		if (exec_record(call, &call->recs[i]) != 0)
			break;
}

static void
exec_start(struct provider_call *call)
{
	provider_blocking(call, exec_work);
}

static const char *const exec_settings[] = { "command", "timeout", "env", NULL };

const struct provider_ops provider_exec = {
	.type = "exec",
	.summary = "an operator's program: COMMAND ensure|remove FQDN VALUE (command, timeout, env)",
	.batch_max = 1,
	.zoneless = true,
	.default_rate = NULL,
	.settings = exec_settings,
	.open = exec_open,
	.close = exec_close,
	.start = exec_start,
};
