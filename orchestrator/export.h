/*
 * export.h - issued certificates written into folders for servers: one folder per certificate
 * with cert.pem, chain.pem, fullchain.pem, key.pem and haproxy.pem, written atomically and only
 * where the content changed; and the selection of the results to write.
 */
#ifndef CF_EXPORT_H
#define CF_EXPORT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "cf.h"

/* The files of a certificate's folder. */
#define EXPORT_CERT "cert.pem"           /* the leaf */
#define EXPORT_CHAIN "chain.pem"         /* the intermediates */
#define EXPORT_FULLCHAIN "fullchain.pem" /* leaf then intermediates */
#define EXPORT_KEY "key.pem"             /* the private key, 0600 */
#define EXPORT_HAPROXY "haproxy.pem"     /* fullchain then key, 0600: HAProxy's crt */
#define EXPORT_FOLDER_MAX 300            /* a name of 253 octets, "*." as "_wildcard.", "_" and an id */

/* One current result to export, as export_select loads it. */
struct export_cert {
	int64_t certificate_id, result_id;
	char *names;           /* the certificate's names, space-separated, primary first */
	char *folder;          /* export_folder_name of the primary name */
	char *leaf, *chain;    /* PEM */
	char *key_sealed;      /* results.key_pem as stored (opened by export_write) */
	char *serial;          /* hex */
	char *not_after;       /* RFC 3339, UTC */
};

/* What to select: the selectors add up; all takes every current certificate. */
struct export_sel {
	const char *const *names;  /* certificates holding any of these names (normalized) */
	size_t nnames;
	const int64_t *runs;       /* certificates issued by a job of these runs */
	size_t nruns;
	const char *since;         /* results stored at or after this time (PostgreSQL's timestamptz) */
	bool all;
	bool undeployed;           /* results not deployed yet (deployed_at NULL) ... */
	int retry_after;           /* ... whose last failed delivery is older than this many seconds */
};

/*
 * The current results of certificates not retired that sel selects, by result id. 0; 1 when a
 * selector is bad (a name no such certificate holds, a time PostgreSQL does not read), err naming
 * it; -1 when the database fails.
 */
int export_select(PGconn *c, const struct export_sel *sel, struct export_cert **out, size_t *n,
    cf_err *err) CF_MUST;
void export_certs_free(struct export_cert *t, size_t n);

/*
 * The folder of a certificate whose primary name is name: the name itself, "*." at its start as
 * "_wildcard." (normalized names hold nothing else a path could misread); with shared_id > 0 (a
 * certificate whose primary name an older one holds too), "_" and that id after it. -1 when name
 * could still name another folder ("", ".", "..", a '/', a leading '.', too long).
 */
int export_folder_name(const char *name, int64_t shared_id, char out[EXPORT_FOLDER_MAX], cf_err *err) CF_MUST;

/*
 * Opens the export folder path, created (0755) when missing; *fd is the folder's descriptor.
 * path itself must not be a symbolic link (its parents may be). 0; 1 when path is a symbolic
 * link or not a folder; -1 when it cannot be opened or made. err names path.
 */
int export_dir_open(const char *path, int *fd, cf_err *err) CF_MUST;

/*
 * Before anything is written: each certificate's folder in dfd is missing or a real folder, and
 * its files are missing or regular files. 1 naming the first that is not (a symbolic link among
 * them), 0 when all are.
 */
int export_check(int dfd, const char *path, const struct export_cert *t, size_t n, cf_err *err) CF_MUST;

/*
 * Writes t's folder in dfd (path is its name, for messages). Each file whose content or mode
 * differs is written to a temporary file in the same folder and fsynced; once all are, they are
 * renamed over the old ones and the folder is fsynced. A file already right is not touched (its
 * mtime stays). *changed says whether any file was written. The key is opened with the installed
 * keyring and written only into 0600 files, whatever the umask. On failure the old files stay
 * as they were, the temporary files are removed, and err names the file: -1 (1 when the folder
 * turned out to be a symbolic link).
 */
int export_write(int dfd, const char *path, const struct export_cert *t, bool *changed, cf_err *err) CF_MUST;

#endif
