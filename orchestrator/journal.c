/* journal.c - the local journal of messages PostgreSQL would not take, and its replay. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "keyring.h"
#include "log.h"
#include "store.h"

#define JOURNAL_VERSION 1

struct journal {
	pthread_mutex_t lock;
	int fd;                   /* opened (and created) at the first entry */
	char *path;
	char database[160];       /* which database its entries belong to (db_identity) */
	long appended;
};

/*
 * The database's identity: its cluster's system identifier and its name. A journal may hold
 * entries of several databases (one per user by default); each is replayed into its own.
 */
static int
db_identity(PGconn *c, char *buf, size_t len, cf_err *err)
{
	PGresult *res = db_exec(c, "identifying the database", "SELECT (SELECT system_identifier FROM "
	    "pg_control_system())::text || '/' || current_database() AS id", 0, NULL, err);

	if (res == NULL)
		return -1;
	snprintf(buf, len, "%s", db_get(res, 0, "id") ? db_get(res, 0, "id") : "");
	PQclear(res);
	return 0;
}

int
journal_default_path(char *buf, size_t len, cf_err *err)
{
	const char *v;
	int n;

	if ((v = getenv("CERTFLEET_JOURNAL")) && v[0])
		n = snprintf(buf, len, "%s", v);
	else if ((v = getenv("STATE_DIRECTORY")) && v[0])
		n = snprintf(buf, len, "%.*s/journal", (int)strcspn(v, ":"), v); /* the first of several */
	else if ((v = getenv("XDG_STATE_HOME")) && v[0] == '/')
		n = snprintf(buf, len, "%s/certfleet/journal", v);
	else if ((v = getenv("HOME")) && v[0] == '/')
		n = snprintf(buf, len, "%s/.local/state/certfleet/journal", v);
	else {
		cf_errf(err, "journal: no place for it: set CERTFLEET_JOURNAL (or HOME)");
		return -1;
	}
	if (n < 0 || (size_t)n >= len) {
		cf_errf(err, "journal: its path is too long");
		return -1;
	}
	return 0;
}

/* mkdir -p of path's folder, each new folder 0700. */
static int
make_parent(const char *path, cf_err *err)
{
	char *copy = strdup(path), *dir;
	int rc = -1;

	if (copy == NULL) {
		cf_errf(err, "journal %s: out of memory", path);
		return -1;
	}
	dir = dirname(copy);
	for (char *p = dir + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
				cf_errf(err, "journal %s: cannot make folder %s: %s", path, dir, strerror(errno));
				goto out;
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

/* fsync of path's folder, so that a new or renamed entry in it survives a crash. */
static void
sync_parent(const char *path)
{
	char *copy = strdup(path);
	int fd;

	if (copy == NULL)
		return;
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

/* Refuses a journal others may read: it holds private keys. */
static int
check_private(int fd, const char *path, cf_err *err)
{
	struct stat st;

	if (fstat(fd, &st) != 0) {
		cf_errf(err, "journal %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		cf_errf(err, "journal %s: not a regular file", path);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		cf_errf(err, "journal %s is readable by group or others (mode %03o): it holds private keys; "
		    "chmod 600 it", path, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	return 0;
}

/* Opens the file for appending, creating it (0600) when missing. Under j->lock. */
static int
journal_file(struct journal *j, cf_err *err)
{
	bool existed;

	if (j->fd >= 0)
		return 0;
	existed = access(j->path, F_OK) == 0;
	if ((j->fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		cf_errf(err, "journal %s: %s", j->path, strerror(errno));
		return -1;
	}
	if (check_private(j->fd, j->path, err) != 0) {
		close(j->fd);
		j->fd = -1;
		return -1;
	}
	if (!existed)
		sync_parent(j->path);
	return 0;
}

struct journal *
journal_open(const char *path, PGconn *c, cf_err *err)
{
	struct journal *j = calloc(1, sizeof(*j));
	int fd;

	if (j == NULL || (j->path = strdup(path)) == NULL) {
		free(j);
		cf_errf(err, "journal %s: out of memory", path);
		return NULL;
	}
	j->fd = -1;
	pthread_mutex_init(&j->lock, NULL);
	if (db_identity(c, j->database, sizeof(j->database), err) != 0 || make_parent(path, err) != 0)
		goto fail;
	/* an existing journal must be private now, not at the first entry, when it is too late to say */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
		int rc = check_private(fd, path, err);
		close(fd);
		if (rc != 0)
			goto fail;
	} else if (errno != ENOENT) {
		cf_errf(err, "journal %s: %s", path, strerror(errno));
		goto fail;
	}
	return j;
fail:
	journal_close(j);
	return NULL;
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	if (j->fd >= 0)
		close(j->fd);
	pthread_mutex_destroy(&j->lock);
	free(j->path);
	free(j);
}

bool
journal_wants(const struct outmsg *m)
{
	return m->kind == OUT_ISSUED || (m->kind == OUT_ORDER && m->order_url != NULL);
}

long
journal_appended(const struct journal *j)
{
	return j ? j->appended : 0;
}

/* ---- entries ---- */

static void
set_str(json_t *o, const char *key, const char *v)
{
	if (v)
		json_object_set_new(o, key, json_string(v));
}

/* v sealed for the journal under key, when v is set; -1 with err. */
static int
set_sealed(json_t *o, const char *key, const char *v, cf_err *err)
{
	char *sealed;

	if (v == NULL)
		return 0;
	if ((sealed = keyring_seal(keyring_installed(), SEAL_AT_JOURNAL, v, err)) == NULL)
		return -1;
	json_object_set_new(o, key, json_string(sealed));
	free(sealed);
	return 0;
}

/*
 * The entry of m as one line of JSON (malloc'd, ends in "\n"), or NULL with err. Its keys are
 * sealed as in the database, so the journal holds no key in clear either.
 */
static char *
entry_line(const struct outmsg *m, const char *database, const char *why, cf_err *err)
{
	json_t *o = json_object();
	char *text = NULL, *line = NULL;

	if (o == NULL)
		goto oom;
	json_object_set_new(o, "v", json_integer(JOURNAL_VERSION));
	json_object_set_new(o, "kind", json_string(m->kind == OUT_ISSUED ? "issued" : "order"));
	set_str(o, "database", database);
	set_str(o, "why", why);
	json_object_set_new(o, "job_id", json_integer(m->job_id));
	json_object_set_new(o, "certificate_id", json_integer(m->certificate_id));
	json_object_set_new(o, "account_id", json_integer(m->account_id));
	set_str(o, "order_url", m->order_url);
	set_str(o, "state", m->state);
	set_str(o, "finalize_url", m->finalize_url);
	set_str(o, "certificate_url", m->certificate_url);
	if (set_sealed(o, "key_pem_order", m->key_pem_order, err) != 0)
		goto fail;
	set_str(o, "leaf_pem", m->leaf_pem);
	set_str(o, "chain_pem", m->chain_pem);
	if (set_sealed(o, "key_pem", m->key_pem, err) != 0)
		goto fail;
	set_str(o, "serial", m->serial);
	set_str(o, "issuer", m->issuer);
	if (m->kind == OUT_ISSUED) {
		json_object_set_new(o, "not_before", json_integer(m->not_before));
		json_object_set_new(o, "not_after", json_integer(m->not_after));
	}
	text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (text && asprintf(&line, "%s\n", text) < 0)
		line = NULL;
	free(text);
	if (line != NULL)
		return line;
oom:
	cf_errf(err, "out of memory");
	return NULL;
fail:
	json_decref(o);
	return NULL;
}

static char *
get_str(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v ? strdup(v) : NULL;
}

/*
 * The key under key, opened (an entry of an earlier version holds it in clear); NULL when absent
 * or when it does not open (*bad set: the entry is kept for a run with the right KEK).
 */
static char *
get_secret(json_t *o, const char *key, bool *bad)
{
	const char *v = json_string_value(json_object_get(o, key));
	char *s;
	cf_err err;

	if (v == NULL)
		return NULL;
	if ((s = keyring_open(keyring_installed(), SEAL_AT_JOURNAL, v, &err)) == NULL) {
		log_error("journal: %s", err.msg);
		*bad = true;
	}
	return s;
}

/*
 * The message of an entry, or NULL when the line is not one this version wrote; *other is set
 * when it belongs to another database than database.
 */
static struct outmsg *
entry_parse(const char *line, const char *database, bool *other)
{
	json_t *o = json_loads(line, 0, NULL);
	const char *kind = json_string_value(json_object_get(o, "kind"));
	const char *db = json_string_value(json_object_get(o, "database"));
	struct outmsg *m = NULL;
	bool bad = false;

	*other = false;
	if (o == NULL || json_integer_value(json_object_get(o, "v")) != JOURNAL_VERSION || kind == NULL)
		goto out;
	if (db == NULL || strcmp(db, database) != 0) {
		*other = true;
		goto out;
	}
	if (strcmp(kind, "issued") == 0)
		m = outmsg_new(OUT_ISSUED, json_integer_value(json_object_get(o, "job_id")));
	else if (strcmp(kind, "order") == 0)
		m = outmsg_new(OUT_ORDER, json_integer_value(json_object_get(o, "job_id")));
	if (m == NULL)
		goto out;
	m->certificate_id = json_integer_value(json_object_get(o, "certificate_id"));
	m->account_id = json_integer_value(json_object_get(o, "account_id"));
	m->order_url = get_str(o, "order_url");
	m->state = get_str(o, "state");
	m->finalize_url = get_str(o, "finalize_url");
	m->certificate_url = get_str(o, "certificate_url");
	m->key_pem_order = get_secret(o, "key_pem_order", &bad);
	m->leaf_pem = get_str(o, "leaf_pem");
	m->chain_pem = get_str(o, "chain_pem");
	m->key_pem = get_secret(o, "key_pem", &bad);
	m->serial = get_str(o, "serial");
	m->issuer = get_str(o, "issuer");
	m->not_before = json_integer_value(json_object_get(o, "not_before"));
	m->not_after = json_integer_value(json_object_get(o, "not_after"));
	if (bad || m->order_url == NULL || (m->kind == OUT_ISSUED && (m->leaf_pem == NULL || m->key_pem == NULL ||
	    m->serial == NULL))) {
		outmsg_free(m);
		m = NULL;
	}
out:
	json_decref(o);
	return m;
}

/* Writes all of buf to fd; 0 or -1 (errno set). */
static int
write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

int
journal_append(struct journal *j, const struct outmsg *m, const char *why, cf_err *err)
{
	cf_err lerr;
	char *line = entry_line(m, j->database, why, &lerr);
	int rc = -1;

	if (line == NULL) {
		cf_errf(err, "journal %s: writing job %lld's entry: %s", j->path, (long long)m->job_id, lerr.msg);
		return -1;
	}
	pthread_mutex_lock(&j->lock);
	if (journal_file(j, err) == 0) {
		flock(j->fd, LOCK_EX); /* another process may replay or append */
		if (write_all(j->fd, line, strlen(line)) != 0 || fsync(j->fd) != 0)
			cf_errf(err, "journal %s: writing job %lld's entry: %s", j->path, (long long)m->job_id,
			    strerror(errno));
		else
			rc = 0;
		flock(j->fd, LOCK_UN);
	}
	if (rc == 0)
		j->appended++;
	pthread_mutex_unlock(&j->lock);
	free(line);
	return rc;
}

/* ---- replay ---- */

/* True when PostgreSQL already holds what m would store. */
static int
already_stored(PGconn *c, const struct outmsg *m, bool *yes, cf_err *err)
{
	char cert[24];
	const char *p[] = { cert, m->serial };
	PGresult *res;

	*yes = false;
	if (m->kind != OUT_ISSUED)
		return 0; /* an order row is an upsert: storing it again changes nothing */
	snprintf(cert, sizeof(cert), "%" PRId64, m->certificate_id);
	res = db_exec(c, "looking for a journalled result", "SELECT 1 FROM results WHERE certificate_id = $1 "
	    "AND serial = $2", 2, p, err);
	if (res == NULL)
		return -1;
	*yes = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

/* Reads the whole file at fd into a NUL-terminated buffer (malloc'd), or NULL. */
static char *
read_all(int fd, size_t *len)
{
	cf_buf b = { 0 };
	char chunk[8192];
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			cf_buf_free(&b);
			return NULL;
		}
		if (cf_buf_append(&b, chunk, (size_t)n) != 0) {
			cf_buf_free(&b);
			return NULL;
		}
	}
	if (b.data == NULL && cf_buf_append(&b, "", 0) != 0)
		return NULL;
	*len = b.len;
	return b.data;
}

/* Replaces path with the lines of keep (or removes it when keep is empty), crash-safely. */
static int
rewrite(const char *path, const cf_buf *keep, cf_err *err)
{
	char tmp[4096];
	int fd;

	if (keep->len == 0) {
		if (unlink(path) != 0 && errno != ENOENT) {
			cf_errf(err, "journal %s: removing it: %s", path, strerror(errno));
			return -1;
		}
		sync_parent(path);
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0 ||
	    write_all(fd, keep->data, keep->len) != 0 || fsync(fd) != 0) {
		cf_errf(err, "journal %s: writing %s: %s", path, tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		cf_errf(err, "journal %s: renaming %s: %s", path, tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	sync_parent(path);
	return 0;
}

int
journal_replay(PGconn *c, const char *path, struct journal_replay *out, cf_err *err)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	char *data = NULL, *line, *next, database[160];
	cf_buf keep = { 0 };
	size_t len = 0;
	bool away = false;
	long others = 0;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		cf_errf(err, "journal %s: %s", path, strerror(errno));
		return -1;
	}
	if (check_private(fd, path, err) != 0 || db_identity(c, database, sizeof(database), err) != 0)
		goto out;
	flock(fd, LOCK_EX);
	if ((data = read_all(fd, &len)) == NULL) {
		cf_errf(err, "journal %s: reading it: %s", path, strerror(errno));
		goto out;
	}
	for (line = data; line < data + len && *line; line = next) {
		struct outmsg *m = NULL;
		bool have = false, other = false;
		cf_err serr;
		next = strchr(line, '\n');
		next = next ? next + 1 : line + strlen(line);
		if (away || (m = entry_parse(line, database, &other)) == NULL) {
			if (other)
				others++;
			else if (!away)
				log_error("journal %s: an entry this version cannot read is kept as it is", path);
			if (cf_buf_append(&keep, line, (size_t)(next - line)) != 0)
				goto oom;
			out->kept += !other;
			continue;
		}
		if (already_stored(c, m, &have, &serr) == 0 && (have || store_one(c, m, &serr) == 0)) {
			log_info("journal: stored job %lld's %s from the journal", (long long)m->job_id,
			    m->kind == OUT_ISSUED ? "certificate" : "order");
			out->stored++;
		} else {
			away = db_failure_transient(c);
			log_error("journal %s: job %lld's entry stays in the journal: %s", path, (long long)m->job_id,
			    serr.msg);
			if (cf_buf_append(&keep, line, (size_t)(next - line)) != 0) {
				outmsg_free(m);
				goto oom;
			}
			out->kept++;
		}
		outmsg_free(m);
	}
	if (others)
		log_info("journal %s: %ld entr%s of other databases left for them", path, others,
		    others == 1 ? "y" : "ies");
	rc = rewrite(path, &keep, err);
	goto out;
oom:
	cf_errf(err, "journal %s: out of memory replaying it", path);
out:
	if (data) {
		explicit_bzero(data, len);
		free(data);
	}
	if (keep.data)
		explicit_bzero(keep.data, keep.len);
	cf_buf_free(&keep);
	close(fd);
	return rc;
}
