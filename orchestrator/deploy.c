/* deploy.c - certificates delivered: exported, a hook run for each, each attempt recorded. */
#include "deploy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "log.h"

#define DEPLOY_PATH_DEFAULT "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DEPLOY_KILL_GRACE_MS 2000 /* after SIGTERM to a hook's group, before SIGKILL */

static const char *const sql_event =
    "INSERT INTO deploy_events (result_id, certificate_id, kind, exit_code, detail) "
    "VALUES ($1, $2, $3, $4, $5)";
static const char *const sql_deployed =
    "UPDATE results SET deployed_at = now() WHERE id = $1";

int
deploy_hook_check(const char *path, cf_err *err)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		cf_errf(err, "--hook %s: %s", path, strerror(errno));
		return 1;
	}
	if (!S_ISREG(st.st_mode) || access(path, X_OK) != 0 || (st.st_mode & 0111) == 0) {
		cf_errf(err, "--hook %s: not an executable file", path);
		return 1;
	}
	return 0;
}

/* The hook's environment: PATH and certfleet's own variables, nothing else of ours. */
static char **
hook_env(const char *folder, const struct export_cert *t, bool changed)
{
	const char *path = getenv("PATH");
	char primary[EXPORT_FOLDER_MAX];
	char **env = calloc(16, sizeof(char *));
	int n = 0, bad = 0;

	if (env == NULL)
		return NULL;
	snprintf(primary, sizeof(primary), "%.*s", (int)strcspn(t->names, " "), t->names);
#define ADD(...) bad |= asprintf(&env[n++], __VA_ARGS__) < 0
	ADD("PATH=%s", path && *path ? path : DEPLOY_PATH_DEFAULT);
	ADD("CERTFLEET_DEPLOY_DIR=%s", folder);
	ADD("CERTFLEET_CERT_FILE=%s/%s", folder, EXPORT_CERT);
	ADD("CERTFLEET_CHAIN_FILE=%s/%s", folder, EXPORT_CHAIN);
	ADD("CERTFLEET_FULLCHAIN_FILE=%s/%s", folder, EXPORT_FULLCHAIN);
	ADD("CERTFLEET_KEY_FILE=%s/%s", folder, EXPORT_KEY);
	ADD("CERTFLEET_HAPROXY_FILE=%s/%s", folder, EXPORT_HAPROXY);
	ADD("CERTFLEET_NAME=%s", primary);
	ADD("CERTFLEET_NAMES=%s", t->names);
	ADD("CERTFLEET_SERIAL=%s", t->serial);
	ADD("CERTFLEET_NOT_AFTER=%s", t->not_after);
	ADD("CERTFLEET_CERTIFICATE_ID=%" PRId64, t->certificate_id);
	ADD("CERTFLEET_RESULT_ID=%" PRId64, t->result_id);
	ADD("CERTFLEET_CHANGED=%d", changed ? 1 : 0);
#undef ADD
	if (bad) {
		for (int i = 0; i < n; i++)
			free(env[i]);
		free(env);
		return NULL;
	}
	return env;
}

static void
env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/* Reads what the pipe holds into excerpt (up to its end), discarding the rest. 0 at end of file. */
static int
drain(int fd, char *excerpt, size_t *len)
{
	char buf[4096];
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		size_t room = DEPLOY_EXCERPT_MAX - 1 - *len, take = (size_t)r < room ? (size_t)r : room;
		memcpy(excerpt + *len, buf, take);
		*len += take;
	}
	if (r == 0)
		return 0;
	return errno == EAGAIN || errno == EINTR ? 1 : 0;
}

int
deploy_hook_run(const char *hook, const char *folder, const struct export_cert *t, bool changed, int timeout,
    int *status, char excerpt[DEPLOY_EXCERPT_MAX], cf_err *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char *argv[] = { (char *)hook, (char *)folder, NULL };
	char **env = NULL;
	int pipefd[2] = { -1, -1 }, wst = 0, rc = -1, open_pipe = 1, e;
	int64_t deadline = cf_mono_ms() + (int64_t)timeout * 1000, killed_at = 0;
	size_t len = 0;
	pid_t pid = -1;

	excerpt[0] = '\0';
	if ((env = hook_env(folder, t, changed)) == NULL) {
		cf_errf(err, "hook %s: out of memory", hook);
		return -1;
	}
	if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) {
		cf_errf(err, "hook %s: pipe: %s", hook, strerror(errno));
		env_free(env);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/* its own process group, so that a timeout ends what it started too; signals as by default */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	{
		sigset_t none, all;
		sigemptyset(&none);
		sigfillset(&all);
		posix_spawnattr_setsigmask(&attr, &none);
		posix_spawnattr_setsigdefault(&attr, &all);
	}
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	if ((e = posix_spawn(&pid, hook, &fa, &attr, argv, env)) != 0) {
		cf_errf(err, "hook %s: cannot start it: %s", hook, strerror(e));
		goto out;
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	for (;;) {
		struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
		pid_t w = waitpid(pid, &wst, WNOHANG);
		int64_t now = cf_mono_ms();

		if (w == pid) {
			if (open_pipe)
				drain(pipefd[0], excerpt, &len);
			break;
		}
		if (w < 0 && errno != EINTR) {
			cf_errf(err, "hook %s: waitpid: %s", hook, strerror(errno));
			goto out;
		}
		if (killed_at == 0 && now >= deadline) {
			snprintf(excerpt + len, DEPLOY_EXCERPT_MAX - len, "%s[certfleet: killed after %d s]",
			    len && excerpt[len - 1] != '\n' ? "\n" : "", timeout);
			len = strlen(excerpt);
			kill(-pid, SIGTERM);
			killed_at = now;
		} else if (killed_at && now >= killed_at + DEPLOY_KILL_GRACE_MS) {
			kill(-pid, SIGKILL);
		}
		if (open_pipe && poll(&p, 1, 50) > 0)
			open_pipe = drain(pipefd[0], excerpt, &len);
		else if (!open_pipe)
			poll(NULL, 0, 50);
	}
	excerpt[len] = '\0';
	if (killed_at)
		kill(-pid, SIGKILL); /* what it left behind */
	*status = WIFEXITED(wst) ? WEXITSTATUS(wst) : WIFSIGNALED(wst) ? 128 + WTERMSIG(wst) : 255;
	rc = 0;
out:
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	env_free(env);
	return rc;
}

/* Records one delivery attempt; exit_code NULL for none. */
static int
record(PGconn *c, const struct export_cert *t, const char *kind, const int *exit_code, const char *detail,
    cf_err *err)
{
	char rid[24], cid[24], code[16];
	const char *p[5] = { rid, cid, kind, NULL, detail };

	snprintf(rid, sizeof(rid), "%" PRId64, t->result_id);
	snprintf(cid, sizeof(cid), "%" PRId64, t->certificate_id);
	if (exit_code) {
		snprintf(code, sizeof(code), "%d", *exit_code);
		p[3] = code;
	}
	return db_run(c, "recording a deploy event", sql_event, 5, p, err);
}

/*
 * Text PostgreSQL takes: the excerpt up to its first NUL, octets outside printable ASCII (but line
 * ends and tabs) as '?'.
 */
static void
text_clean(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p; p++)
		if (*p >= 0x80 || (*p < 0x20 && *p != '\n' && *p != '\t'))
			*p = '?';
}

/* Delivers one result: export, hook, events, deployed_at. 0 delivered, 1 failed, -1 database. */
static int
deliver(PGconn *c, int dfd, const struct deploy_opts *o, const struct export_cert *t, struct deploy_counts *n,
    cf_err *err)
{
	char folder[4096 + EXPORT_FOLDER_MAX + 2], excerpt[DEPLOY_EXCERPT_MAX], rid[24];
	const char *p[1] = { rid };
	bool changed;
	int status, r;
	cf_err why;

	snprintf(folder, sizeof(folder), "%s/%s", o->dir, t->folder);
	snprintf(rid, sizeof(rid), "%" PRId64, t->result_id);
	if ((r = export_write(dfd, o->dir, t, &changed, &why)) != 0) {
		log_error("deploy: certificate %" PRId64 " (%s), result %" PRId64 ": %s", t->certificate_id, t->names,
		    t->result_id, why.msg);
		printf("failed: %s certificate %" PRId64 " result %" PRId64 " serial %s: export: %s\n", folder,
		    t->certificate_id, t->result_id, t->serial, why.msg);
		n->failed++;
		return record(c, t, "failed", NULL, why.msg, err) != 0 ? -1 : 1;
	}
	if (record(c, t, "exported", NULL, changed ? "changed" : "unchanged", err) != 0)
		return -1;
	if (o->hook) {
		if (deploy_hook_run(o->hook, folder, t, changed, o->timeout, &status, excerpt, &why) != 0) {
			log_error("deploy: certificate %" PRId64 ": %s", t->certificate_id, why.msg);
			n->failed++;
			return record(c, t, "failed", NULL, why.msg, err) != 0 ? -1 : 1;
		}
		text_clean(excerpt);
		if (record(c, t, "hook", &status, excerpt, err) != 0)
			return -1;
		if (status != 0) {
			printf("failed: %s certificate %" PRId64 " result %" PRId64 " serial %s: hook exited %d\n", folder,
			    t->certificate_id, t->result_id, t->serial, status);
			log_warn("deploy: hook %s for %s exited %d; the result stays undeployed, and is tried again", o->hook,
			    folder, status);
			n->failed++;
			return 1;
		}
	}
	if (db_run(c, "marking a result deployed", sql_deployed, 1, p, err) != 0)
		return -1;
	printf("deployed: %s certificate %" PRId64 " result %" PRId64 " serial %s (%s)\n", folder, t->certificate_id,
	    t->result_id, t->serial, changed ? "changed" : "unchanged");
	n->deployed++;
	n->unchanged += !changed;
	fflush(stdout);
	return 0;
}

/* One pass: every result not yet deployed (retry_after applies). EXIT_OK, or an exit code. */
static int
pass(PGconn *c, int dfd, const struct deploy_opts *o, int retry_after, struct deploy_counts *n,
    volatile sig_atomic_t *stop)
{
	struct export_sel sel = { .undeployed = true, .retry_after = retry_after };
	struct export_cert *t = NULL;
	size_t count = 0;
	cf_err err;
	int rc = EXIT_FAILURE_RUNTIME, r;

	if ((r = export_select(c, &sel, &t, &count, &err)) != 0) {
		log_error("deploy: %s", err.msg);
		return r > 0 ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
	}
	if (export_check(dfd, o->dir, t, count, &err) != 0) {
		log_error("deploy: %s", err.msg);
		rc = EXIT_USAGE;
		goto out;
	}
	for (size_t i = 0; i < count && !*stop; i++) {
		if (deliver(c, dfd, o, &t[i], n, &err) < 0) {
			log_error("deploy: %s", err.msg);
			goto out;
		}
	}
	rc = EXIT_OK;
out:
	export_certs_free(t, count);
	fflush(stdout);
	return rc;
}

/* Connects and LISTENs; NULL after logging why. */
static PGconn *
listen_connect(deploy_connect_fn *connect, const void *arg, bool *refused)
{
	PGconn *c = connect(arg, refused);
	cf_err err;

	if (c && db_run(c, "LISTEN", "LISTEN " DEPLOY_CHANNEL, 0, NULL, &err) != 0) {
		log_error("deploy: %s", err.msg);
		PQfinish(c);
		c = NULL;
	}
	return c;
}

/* Waits up to ms for a notification on c; 1 when one came, 0 none, -1 when the connection broke. */
static int
wait_notify(PGconn *c, int ms, volatile sig_atomic_t *stop)
{
	int64_t end = cf_mono_ms() + ms;
	PGnotify *nt;
	int got = 0;

	while (!*stop && cf_mono_ms() < end) {
		struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };
		if (p.fd < 0)
			return -1;
		if (poll(&p, 1, 500) < 0 && errno != EINTR)
			return -1;
		if (PQconsumeInput(c) == 0 || PQstatus(c) != CONNECTION_OK)
			return -1;
		while ((nt = PQnotifies(c)) != NULL) {
			log_debug("deploy: NOTIFY %s \"%s\"", nt->relname, nt->extra);
			PQfreemem(nt);
			got = 1;
		}
		if (got)
			return 1;
	}
	return 0;
}

int
deploy_run(deploy_connect_fn *connect, const void *arg, const struct deploy_opts *o,
    volatile sig_atomic_t *stop, struct deploy_counts *n)
{
	PGconn *c = NULL;
	bool refused = false;
	cf_err err;
	int dfd = -1, rc, r, backoff = 1;
	int64_t last_full = 0;

	if ((r = export_dir_open(o->dir, &dfd, &err)) != 0) {
		log_error("deploy: %s", err.msg);
		return r > 0 ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
	}
	if (!o->follow) {
		if ((c = connect(arg, &refused)) == NULL) {
			rc = refused ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
			goto out;
		}
		rc = pass(c, dfd, o, 0, n, stop);
		if (rc == EXIT_OK && n->failed)
			rc = EXIT_JOBS_FAILED;
		goto out;
	}
	rc = EXIT_OK;
	while (!*stop) {
		if (c == NULL) {
			if ((c = listen_connect(connect, arg, &refused)) == NULL) {
				if (refused) {
					rc = EXIT_USAGE;
					goto out;
				}
				log_warn("deploy: database unreachable; trying again in %d s", backoff);
				for (int i = 0; i < backoff * 10 && !*stop; i++)
					poll(NULL, 0, 100);
				backoff = backoff < 30 ? backoff * 2 : 30;
				continue;
			}
			backoff = 1;
			last_full = 0; /* catch up on what came while there was no connection */
		}
		/* a failed delivery waits retry_after, but not behind a pass that a NOTIFY wakes */
		bool full = cf_mono_ms() - last_full >= (int64_t)o->retry_after * 1000;
		if ((r = pass(c, dfd, o, full ? 0 : o->retry_after, n, stop)) == EXIT_USAGE) {
			rc = r;
			goto out;
		}
		if (r != EXIT_OK || PQstatus(c) != CONNECTION_OK) {
			log_warn("deploy: lost the database connection; connecting again");
			PQfinish(c);
			c = NULL;
			continue;
		}
		if (full)
			last_full = cf_mono_ms();
		if (wait_notify(c, o->retry_after * 1000, stop) < 0) {
			log_warn("deploy: lost the database connection; connecting again");
			PQfinish(c);
			c = NULL;
		}
	}
out:
	PQfinish(c);
	if (dfd >= 0)
		close(dfd);
	return rc;
}
