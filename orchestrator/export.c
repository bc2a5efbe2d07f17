/* export.c - issued certificates written into one folder each, atomically and only on change. */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "keyring.h"
#include "pgarray.h"

/*
 * One statement for every selector: a NULL parameter selects nothing by itself. A delivery that
 * failed (a hook that did not exit 0, an export that failed) holds its result back for
 * retry_after seconds, so that deploy --follow does not run a failing hook at every NOTIFY.
 */
/*
 * Two certificates may share a primary name ("a.example" and "a.example,www.a.example"): the
 * oldest of the certificates not retired that have a current result keeps the folder of that
 * name, the others get their id after it. Deciding that over the whole fleet, not the selection,
 * keeps a certificate's folder the same whatever selects it (one pass over certificates).
 */
static const char *const sql_select =
    "WITH active AS (SELECT c.id, min(c.id) OVER (PARTITION BY c.names[1]) AS first_id FROM certificates c "
    "WHERE c.retired_at IS NULL AND EXISTS (SELECT 1 FROM results x WHERE x.certificate_id = c.id AND x.is_current)) "
    "SELECT r.id, r.certificate_id, array_to_string(c.names, ' ') AS names, c.names[1] AS primary_name, "
    "CASE WHEN a.first_id <> c.id THEN c.id ELSE 0 END AS shared_id, "
    "r.leaf_pem, r.chain_pem, r.key_pem, r.serial, "
    "to_char(r.not_after AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS not_after "
    "FROM results r JOIN certificates c ON c.id = r.certificate_id JOIN active a ON a.id = c.id "
    "WHERE r.is_current AND c.retired_at IS NULL AND ($1::bool OR c.names && $2::text[] "
    "OR r.job_id IN (SELECT id FROM jobs WHERE run_id = ANY($3::bigint[])) OR r.created_at >= $4::timestamptz "
    "OR ($5::bool AND r.deployed_at IS NULL AND NOT EXISTS (SELECT 1 FROM deploy_events e "
    "WHERE e.result_id = r.id AND e.kind <> 'exported' AND e.exit_code IS DISTINCT FROM 0 "
    "AND e.at > now() - make_interval(secs => $6::int)))) "
    "ORDER BY r.id";

void
export_certs_free(struct export_cert *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++) {
		free(t[i].names);
		free(t[i].folder);
		free(t[i].leaf);
		free(t[i].chain);
		free(t[i].key_sealed);
		free(t[i].serial);
		free(t[i].not_after);
	}
	free(t);
}

int
export_folder_name(const char *name, int64_t shared_id, char out[EXPORT_FOLDER_MAX], cf_err *err)
{
	const char *rest = name;
	size_t off = 0, len;

	if (strncmp(name, "*.", 2) == 0) {
		memcpy(out, "_wildcard.", 10);
		off = 10;
		rest = name + 2;
	}
	len = strlen(rest);
	if (len == 0 || off + len + 22 >= EXPORT_FOLDER_MAX || strchr(rest, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 || rest[0] == '.') {
		cf_errf(err, "certificate name \"%.300s\": not usable as a folder name", name);
		return -1;
	}
	memcpy(out + off, rest, len + 1);
	if (shared_id > 0)
		snprintf(out + off + len, EXPORT_FOLDER_MAX - off - len, "_%" PRId64, shared_id);
	return 0;
}

/* The first name of sel that no certificate of t holds (names space-separated), or NULL. */
static const char *
name_missing(const struct export_sel *sel, const struct export_cert *t, size_t n)
{
	for (size_t k = 0; k < sel->nnames; k++) {
		size_t len = strlen(sel->names[k]);
		bool found = false;
		for (size_t i = 0; i < n && !found; i++) {
			for (const char *p = t[i].names; p && *p && !found; p += strcspn(p, " "), p += *p == ' ') {
				found = strncmp(p, sel->names[k], len) == 0 && (p[len] == ' ' || p[len] == '\0');
			}
		}
		if (!found)
			return sel->names[k];
	}
	return NULL;
}

int
export_select(PGconn *c, const struct export_sel *sel, struct export_cert **out, size_t *n, cf_err *err)
{
	struct pgarray names = { 0 }, runs = { 0 };
	char retry[16], folder[EXPORT_FOLDER_MAX];
	const char *params[6], *missing;
	struct export_cert *t = NULL;
	PGresult *res = NULL;
	size_t rows = 0;
	int rc = -1;

	*out = NULL;
	*n = 0;
	if (sel->since) {
		if ((res = db_exec(c, "reading --changed-since", "SELECT $1::timestamptz", 1, &sel->since, err)) == NULL) {
			cf_errf(err, "--changed-since \"%.100s\": not a time PostgreSQL reads (say 2026-12-01 or "
			    "'2026-12-01 12:00+00')", sel->since);
			rc = 1;
			goto out;
		}
		PQclear(res);
	}
	for (size_t i = 0; i < sel->nnames; i++)
		pgarray_add(&names, sel->names[i]);
	for (size_t i = 0; i < sel->nruns; i++)
		pgarray_add_i64(&runs, sel->runs[i]);
	snprintf(retry, sizeof(retry), "%d", sel->retry_after);
	params[0] = sel->all ? "true" : "false";
	params[1] = sel->nnames ? pgarray_finish(&names) : NULL;
	params[2] = sel->nruns ? pgarray_finish(&runs) : NULL;
	params[3] = sel->since;
	params[4] = sel->undeployed ? "true" : "false";
	params[5] = retry;
	if ((sel->nnames && params[1] == NULL) || (sel->nruns && params[2] == NULL)) {
		cf_errf(err, "selecting results: out of memory");
		goto out;
	}
	if ((res = db_exec(c, "selecting the results to export", sql_select, 6, params, err)) == NULL)
		goto out;
	rows = (size_t)PQntuples(res);
	if (rows && (t = calloc(rows, sizeof(*t))) == NULL) {
		cf_errf(err, "selecting results: out of memory");
		goto out;
	}
	for (size_t i = 0; i < rows; i++) {
		struct export_cert *e = &t[i];
		e->result_id = db_get_i64(res, (int)i, "id");
		e->certificate_id = db_get_i64(res, (int)i, "certificate_id");
		if (export_folder_name(db_get(res, (int)i, "primary_name"), db_get_i64(res, (int)i, "shared_id"), folder,
		    err) != 0)
			goto out_rows;
		e->names = cf_strdup(db_get(res, (int)i, "names"));
		e->folder = cf_strdup(folder);
		e->leaf = cf_strdup(db_get(res, (int)i, "leaf_pem"));
		e->chain = cf_strdup(db_get(res, (int)i, "chain_pem"));
		e->key_sealed = cf_strdup(db_get(res, (int)i, "key_pem"));
		e->serial = cf_strdup(db_get(res, (int)i, "serial"));
		e->not_after = cf_strdup(db_get(res, (int)i, "not_after"));
		if (!e->names || !e->folder || !e->leaf || !e->chain || !e->key_sealed || !e->serial || !e->not_after) {
			cf_errf(err, "selecting results: out of memory");
			goto out_rows;
		}
	}
	if ((missing = name_missing(sel, t, rows)) != NULL) {
		cf_errf(err, "--name %s: no current certificate of the fleet holds it", missing);
		rc = 1;
		goto out_rows;
	}
	*out = t;
	*n = rows;
	t = NULL;
	rc = 0;
out_rows:
	export_certs_free(t, rows);
out:
	PQclear(res);
	pgarray_free(&names);
	pgarray_free(&runs);
	return rc;
}

int
export_dir_open(const char *path, int *fd, cf_err *err)
{
	struct stat st;

	*fd = -1;
	if (lstat(path, &st) != 0) {
		if (errno != ENOENT || mkdir(path, 0755) != 0) {
			cf_errf(err, "export folder %s: %s", path, strerror(errno));
			return -1;
		}
	} else if (S_ISLNK(st.st_mode)) {
		cf_errf(err, "export folder %s: a symbolic link; name the folder it points to, if that is meant", path);
		return 1;
	} else if (!S_ISDIR(st.st_mode)) {
		cf_errf(err, "export folder %s: not a folder", path);
		return 1;
	}
	if ((*fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		int e = errno;
		cf_errf(err, "export folder %s: %s", path, e == ELOOP ? "a symbolic link" : strerror(e));
		return e == ELOOP || e == ENOTDIR ? 1 : -1;
	}
	return 0;
}

static const char *const export_files[] = { EXPORT_CERT, EXPORT_CHAIN, EXPORT_FULLCHAIN, EXPORT_KEY, EXPORT_HAPROXY };
#define NFILES (sizeof(export_files) / sizeof(export_files[0]))

int
export_check(int dfd, const char *path, const struct export_cert *t, size_t n, cf_err *err)
{
	struct stat st;
	char rel[EXPORT_FOLDER_MAX + 32];

	for (size_t i = 0; i < n; i++) {
		if (fstatat(dfd, t[i].folder, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			cf_errf(err, "%s/%s: %s, not a folder; certfleet writes only into folders of its own", path,
			    t[i].folder, S_ISLNK(st.st_mode) ? "a symbolic link" : "a file");
			return 1;
		}
		for (size_t f = 0; f < NFILES; f++) {
			snprintf(rel, sizeof(rel), "%s/%s", t[i].folder, export_files[f]);
			if (fstatat(dfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
				cf_errf(err, "%s/%s: %s, not a regular file", path, rel,
				    S_ISLNK(st.st_mode) ? "a symbolic link" : "a special file");
				return 1;
			}
		}
	}
	return 0;
}

/* One file of a certificate's folder, as export_write stages it. */
struct export_file {
	const char *name;
	cf_buf data;          /* its content (wiped when freed: two of them hold the key) */
	mode_t mode;          /* exactly, whatever the umask */
	bool staged;          /* its temporary file exists */
	char tmp[64];         /* ".NAME.tmp", in the same folder */
};

/* Whether name in fd is a regular file of mode holding exactly data. */
static bool
file_same(int fd, const char *name, const cf_buf *data, mode_t mode)
{
	struct stat st;
	char buf[8192];
	size_t off = 0;
	bool same = false;
	int f;

	if ((f = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return false;
	if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != mode ||
	    (size_t)st.st_size != data->len)
		goto out;
	for (;;) {
		ssize_t r = read(f, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (size_t)r > data->len - off)
			goto out;
		if (r == 0)
			break;
		if (memcmp(buf, data->data + off, (size_t)r) != 0)
			goto out;
		off += (size_t)r;
	}
	same = off == data->len;
out:
	explicit_bzero(buf, sizeof(buf));
	close(f);
	return same;
}

/* Writes f's data to its temporary file in fd, fsynced; err names path/folder/tmp. */
static int
file_stage(int fd, const char *where, struct export_file *f, cf_err *err)
{
	size_t off = 0;
	int t;

	snprintf(f->tmp, sizeof(f->tmp), ".%s.tmp", f->name);
	if (unlinkat(fd, f->tmp, 0) != 0 && errno != ENOENT)
		goto fail;
	if ((t = openat(fd, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, f->mode)) < 0)
		goto fail;
	f->staged = true;
	if (fchmod(t, f->mode) != 0)
		goto fail_close;
	while (off < f->data.len) {
		ssize_t w = write(t, f->data.data + off, f->data.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto fail_close;
		off += (size_t)w;
	}
	if (fsync(t) != 0)
		goto fail_close;
	if (close(t) != 0)
		goto fail;
	return 0;
fail_close: {
	int e = errno;
	close(t);
	errno = e;
}
fail:
	cf_errf(err, "writing %s/%s: %s", where, f->name, strerror(errno));
	return -1;
}

/* Appends a PEM, with a line end after it when it lacks one. */
static int
add_pem(cf_buf *b, const char *pem)
{
	size_t len = strlen(pem);

	if (cf_buf_append(b, pem, len) != 0)
		return -1;
	return len && pem[len - 1] != '\n' ? cf_buf_append(b, "\n", 1) : 0;
}

static void
wipe_buf(cf_buf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap);
	cf_buf_free(b);
}

int
export_write(int dfd, const char *path, const struct export_cert *t, bool *changed, cf_err *err)
{
	struct export_file files[NFILES];
	char where[4096];
	char *key = NULL;
	bool made = false;
	int fd = -1, rc = -1;

	*changed = false;
	memset(files, 0, sizeof(files));
	snprintf(where, sizeof(where), "%s/%s", path, t->folder);
	for (size_t i = 0; i < NFILES; i++) {
		files[i].name = export_files[i];
		files[i].mode = i >= 3 ? 0600 : 0644;
	}
	if ((key = keyring_open(keyring_installed(), SEAL_AT_RESULTS, t->key_sealed, err)) == NULL)
		goto out;
	if (add_pem(&files[0].data, t->leaf) != 0 || add_pem(&files[1].data, t->chain) != 0 ||
	    add_pem(&files[2].data, t->leaf) != 0 || add_pem(&files[2].data, t->chain) != 0 ||
	    add_pem(&files[3].data, key) != 0 || add_pem(&files[4].data, t->leaf) != 0 ||
	    add_pem(&files[4].data, t->chain) != 0 || add_pem(&files[4].data, key) != 0) {
		cf_errf(err, "exporting %s: out of memory", where);
		goto out;
	}
	if (mkdirat(dfd, t->folder, 0755) == 0)
		made = true;
	else if (errno != EEXIST) {
		cf_errf(err, "making %s: %s", where, strerror(errno));
		goto out;
	}
	if ((fd = openat(dfd, t->folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		int e = errno;
		cf_errf(err, "opening %s: %s", where, e == ELOOP ? "a symbolic link" : strerror(e));
		rc = e == ELOOP || e == ENOTDIR ? 1 : -1;
		goto out;
	}
	for (size_t i = 0; i < NFILES; i++) {
		if (!file_same(fd, files[i].name, &files[i].data, files[i].mode) &&
		    file_stage(fd, where, &files[i], err) != 0)
			goto out;
	}
	for (size_t i = 0; i < NFILES; i++) {
		if (!files[i].staged)
			continue;
		if (renameat(fd, files[i].tmp, fd, files[i].name) != 0) {
			cf_errf(err, "renaming %s/%s to %s: %s", where, files[i].tmp, files[i].name, strerror(errno));
			goto out;
		}
		files[i].staged = false;
		*changed = true;
	}
	if (*changed && fsync(fd) != 0) {
		cf_errf(err, "fsync %s: %s", where, strerror(errno));
		goto out;
	}
	if (made && fsync(dfd) != 0) {
		cf_errf(err, "fsync %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < NFILES; i++) {
		if (files[i].staged)
			(void)unlinkat(fd, files[i].tmp, 0);
		wipe_buf(&files[i].data);
	}
	if (fd >= 0)
		close(fd);
	cf_secret_free(key);
	return rc;
}
