/*
 * account.c - ACME account registration (RFC 8555 7.3), run synchronously by the CLI, and the
 * accounts table. The account key is generated here and goes only to the database.
 */
#include "account.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acmesync.h"
#include "base64.h"
#include "db.h"
#include "jws.h"
#include "keyring.h"
#include "keys.h"
#include "log.h"
#include "pgarray.h"

void
account_clear(struct account *a)
{
	if (a == NULL)
		return;
	free(a->directory_url);
	free(a->account_url);
	cf_secret_free(a->key_pem);
	free(a->thumbprint);
	free(a->contact);
	free(a->issuer);
	free(a->created_at);
	free(a->eab_kid);
	free(a->key_rolled_at);
	memset(a, 0, sizeof(*a));
}

/* The columns of an account without its key, as account_from_row reads them. */
#define ACCOUNT_COLUMNS "id, directory_url, account_url, key_thumbprint, " \
    "array_to_string(contact, ',') AS contact, issuer_domain, created_at::text AS created_at, " \
    "eab_kid, key_rolled_at::text AS key_rolled_at "

static char *
account_get_opt(const PGresult *res, int r, const char *col)
{
	return PQgetisnull(res, r, PQfnumber(res, col)) ? NULL : cf_strdup(db_get(res, r, col));
}

static void
account_from_row(const PGresult *res, int r, struct account *out)
{
	out->id = db_get_i64(res, r, "id");
	out->directory_url = cf_strdup(db_get(res, r, "directory_url"));
	out->account_url = cf_strdup(db_get(res, r, "account_url"));
	out->thumbprint = cf_strdup(db_get(res, r, "key_thumbprint"));
	out->contact = cf_strdup(db_get(res, r, "contact"));
	out->issuer = cf_strdup(db_get(res, r, "issuer_domain"));
	out->created_at = cf_strdup(db_get(res, r, "created_at"));
	out->eab_kid = account_get_opt(res, r, "eab_kid");
	out->key_rolled_at = account_get_opt(res, r, "key_rolled_at");
}

/* The account of the first row of res into out: 1, or 0 when res has none. */
static int
account_from(PGresult *res, struct account *out)
{
	if (PQntuples(res) == 0)
		return 0;
	account_from_row(res, 0, out);
	return 1;
}

static bool
copied(const char *src, const char *dst)
{
	return src == NULL || dst != NULL;
}

int
account_copy(struct account *dst, const struct account *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->id = src->id;
	dst->directory_url = cf_strdup(src->directory_url);
	dst->account_url = cf_strdup(src->account_url);
	dst->thumbprint = cf_strdup(src->thumbprint);
	dst->contact = cf_strdup(src->contact);
	dst->issuer = cf_strdup(src->issuer);
	dst->created_at = cf_strdup(src->created_at);
	dst->eab_kid = cf_strdup(src->eab_kid);
	dst->key_rolled_at = cf_strdup(src->key_rolled_at);
	if (!copied(src->directory_url, dst->directory_url) || !copied(src->account_url, dst->account_url) ||
	    !copied(src->thumbprint, dst->thumbprint) || !copied(src->contact, dst->contact) ||
	    !copied(src->issuer, dst->issuer) || !copied(src->created_at, dst->created_at) ||
	    !copied(src->eab_kid, dst->eab_kid) || !copied(src->key_rolled_at, dst->key_rolled_at)) {
		account_clear(dst);
		return -1;
	}
	return 0;
}

/*
 * An account has work while a job of it is queued (job_queue, by its index) or not finished
 * (unfinished_jobs: running here or elsewhere, which a rescue may bring back to the queue).
 */
int
account_load_busy(PGconn *c, const int64_t *except, size_t nexcept, struct account **out, size_t *n,
    cf_err *err)
{
	struct pgarray ids = { 0 };
	const char *p[1];
	PGresult *res;
	int rows;

	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < nexcept; i++)
		pgarray_add_i64(&ids, except[i]);
	if ((p[0] = pgarray_finish(&ids)) == NULL) {
		pgarray_free(&ids);
		cf_errf(err, "listing the accounts with jobs: out of memory");
		return -1;
	}
	res = db_exec(c, "listing the accounts with jobs",
	    "SELECT " ACCOUNT_COLUMNS "FROM accounts a WHERE a.id <> ALL ($1::bigint[]) AND "
	    "(EXISTS (SELECT 1 FROM job_queue q WHERE q.account_id = a.id) "
	    "OR EXISTS (SELECT 1 FROM unfinished_jobs u WHERE u.account_id = a.id)) ORDER BY a.id",
	    1, p, err);
	pgarray_free(&ids);
	if (res == NULL)
		return -1;
	rows = PQntuples(res);
	if (rows > 0 && (*out = calloc((size_t)rows, sizeof(**out))) == NULL) {
		PQclear(res);
		cf_errf(err, "listing the accounts with jobs: out of memory");
		return -1;
	}
	for (int r = 0; r < rows; r++)
		account_from_row(res, r, &(*out)[r]);
	*n = (size_t)rows;
	PQclear(res);
	return 0;
}

int
account_load_id(PGconn *c, int64_t id, struct account *out, cf_err *err)
{
	char ids[24];
	const char *p[] = { ids };
	PGresult *res;
	int found;

	memset(out, 0, sizeof(*out));
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = db_exec(c, "loading the account", "SELECT " ACCOUNT_COLUMNS "FROM accounts WHERE id = $1", 1, p, err);
	if (res == NULL)
		return -1;
	found = account_from(res, out);
	PQclear(res);
	return found;
}

int
account_load(PGconn *c, const char *directory_url, struct account *out, cf_err *err)
{
	const char *p[] = { directory_url };
	PGresult *res;
	int found;

	memset(out, 0, sizeof(*out));
	res = db_exec(c, "loading the account",
	    "SELECT " ACCOUNT_COLUMNS
	    "FROM accounts WHERE directory_url = $1 AND status = 'valid' ORDER BY id DESC LIMIT 1",
	    1, p, err);
	if (res == NULL)
		return -1;
	found = account_from(res, out);
	PQclear(res);
	return found;
}

int
account_load_key(PGconn *c, struct account *a, cf_err *err)
{
	char id[24];
	const char *p[] = { id };
	PGresult *res;
	int rc = -1;

	snprintf(id, sizeof(id), "%" PRId64, a->id);
	res = db_exec(c, "loading the account key", "SELECT key_pem FROM accounts WHERE id = $1", 1, p, err);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		cf_errf(err, "loading the key of account %s: not found", id);
		goto out;
	}
	cf_secret_free(a->key_pem);
	a->key_pem = keyring_open(keyring_installed(), SEAL_AT_ACCOUNTS, PQgetvalue(res, 0, 0), err);
	if (a->key_pem == NULL)
		goto out;
	rc = 0;
out:
	/* the PGresult holds the key as it is stored: sealed, or plain before `certfleet migrate` */
	PQclear(res);
	return rc;
}

#define EAB_FILE_MAX 1024 /* a MAC key file is a line of base64url: CAs hand out 32 to 64 octets */

int
account_eab_key_read(const char *path, unsigned char **mac, size_t *len, cf_err *err)
{
	char buf[EAB_FILE_MAX + 1];
	struct stat st;
	size_t n = 0, start = 0, end;
	ssize_t r;
	int fd, rc = -1;

	*mac = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		cf_errf(err, "EAB key file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		cf_errf(err, "EAB key file %s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		cf_errf(err, "EAB key file %s: mode %04o lets others read it: chmod 600 it", path,
		    (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_uid != geteuid()) {
		cf_errf(err, "EAB key file %s: owned by uid %u, not by this user (%u)", path, (unsigned)st.st_uid,
		    (unsigned)geteuid());
		goto out;
	}
	while (n < EAB_FILE_MAX && (r = read(fd, buf + n, EAB_FILE_MAX - n)) > 0)
		n += (size_t)r;
	end = n;
	while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r' || buf[end - 1] == ' ' ||
	    buf[end - 1] == '\t' || buf[end - 1] == '='))
		end--;
	while (start < end && (buf[start] == ' ' || buf[start] == '\t'))
		start++;
	buf[end] = '\0';
	if (n >= EAB_FILE_MAX || start == end || b64url_decode(buf + start, mac, len) != 0 || *len < 16) {
		if (*mac)
			OPENSSL_cleanse(*mac, *len);
		free(*mac);
		*mac = NULL;
		*len = 0;
		cf_errf(err, "EAB key file %s: expected the CA's MAC key as one line of base64url (16 octets or more)",
		    path);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return rc;
}

/*
 * Adds "externalAccountBinding" to the newAccount payload: the account key's JWK, MAC'd with the
 * CA's key under o->eab_kid, for url (newAccount). 0 or -1 with err set.
 */
static int
eab_bind(json_t *payload, EVP_PKEY *key, const struct account_register_opts *o, const char *url, cf_err *err)
{
	char *jwk = NULL, *eab = NULL;
	json_t *obj = NULL;
	int rc = -1;

	if ((jwk = jwk_json(key, err)) == NULL ||
	    (eab = jws_sign_hs256(o->eab_mac, o->eab_mac_len, o->eab_kid, url, jwk, err)) == NULL)
		goto out;
	if ((obj = json_loads(eab, 0, NULL)) == NULL ||
	    json_object_set_new(payload, "externalAccountBinding", obj) != 0) {
		cf_errf(err, "newAccount %s: building the external account binding failed", url);
		goto out;
	}
	rc = 0;
out:
	free(jwk);
	free(eab);
	return rc;
}

int
account_register(PGconn *c, const struct account_register_opts *o, struct account *out, cf_err *err)
{
	struct acmesync ca = { 0 };
	struct acmesync_reply reply = { 0 };
	json_t *payload = NULL, *contacts = NULL, *meta;
	EVP_PKEY *key = NULL;
	char *text = NULL, *key_pem = NULL, *sealed = NULL;
	char thumb[44];
	const char *new_account, *tos, *issuer = o->issuer;
	cf_buf contact_lit = { 0 };
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (acmesync_open(&ca, &o->http, o->directory_url, err) != 0)
		goto out;
	new_account = acmesync_resource(&ca, "newAccount");
	meta = json_object_get(ca.dir, "meta");
	tos = json_string_value(json_object_get(meta, "termsOfService"));
	if (issuer == NULL)
		issuer = json_string_value(json_array_get(json_object_get(meta, "caaIdentities"), 0));
	if (new_account == NULL || acmesync_resource(&ca, "newNonce") == NULL) {
		cf_errf(err, "ACME directory %s lacks newAccount or newNonce", o->directory_url);
		goto out;
	}
	if (tos && !o->agree_tos) {
		cf_errf(err, "the CA requires agreeing to its terms of service (%s): pass --agree-tos", tos);
		goto out;
	}
	if (issuer == NULL) {
		cf_errf(err, "the directory %s names no CAA identity: pass --issuer with the CA's issuer domain name",
		    o->directory_url);
		goto out;
	}
	contacts = json_array();
	if (cf_buf_append(&contact_lit, "{", 1) != 0)
		goto oom;
	for (size_t i = 0; i < o->ncontacts; i++) {
		if (strchr(o->contacts[i], '"') || strchr(o->contacts[i], '\\') || strchr(o->contacts[i], ',')) {
			cf_errf(err, "contact \"%s\": must be a mailto: URL without quotes or commas", o->contacts[i]);
			goto out;
		}
		json_array_append_new(contacts, json_string(o->contacts[i]));
		if (cf_buf_printf(&contact_lit, "%s\"%s\"", i ? "," : "", o->contacts[i]) != 0)
			goto oom;
	}
	if (cf_buf_append(&contact_lit, "}", 1) != 0)
		goto oom;
	payload = json_pack("{s:b, s:O}", "termsOfServiceAgreed", o->agree_tos ? 1 : 0, "contact", contacts);
	if (payload == NULL)
		goto oom;
	key = key_generate(KEY_EC_P256, err);
	if (key == NULL || jwk_thumbprint(key, thumb, err) != 0 || (key_pem = key_to_pem(key, err)) == NULL)
		goto out;
	if (o->eab_kid != NULL && eab_bind(payload, key, o, new_account, err) != 0)
		goto out;
	if ((text = json_dumps(payload, JSON_COMPACT)) == NULL)
		goto oom;
	/* sealed before the CA sees the account: without a KEK nothing is registered */
	if ((sealed = keyring_seal(keyring_installed(), SEAL_AT_ACCOUNTS, key_pem, err)) == NULL)
		goto out;
	if (acmesync_post(&ca, key, NULL, new_account, text, &reply, err) != 0)
		goto out;
	if ((reply.status != 201 && reply.status != 200) || reply.location == NULL) {
		bool eab_required = json_is_true(json_object_get(meta, "externalAccountRequired"));

		cf_errf(err, "newAccount %s: the CA refused: %s%s", new_account, reply.text,
		    eab_required && o->eab_kid == NULL ? " (the directory requires External Account Binding: "
		    "pass --eab-kid KID --eab-hmac-file FILE with what the CA handed out)" : "");
		goto out;
	}
	const char *p[] = { o->directory_url, reply.location, sealed, thumb, contact_lit.data, issuer, o->eab_kid };
	PGresult *res = db_exec(c, "storing the account",
	    "INSERT INTO accounts (directory_url, account_url, key_pem, key_thumbprint, contact, issuer_domain, eab_kid) "
	    "VALUES ($1, $2, $3, $4, $5::text[], $6, $7) "
	    "ON CONFLICT (directory_url, account_url) DO UPDATE SET status = 'valid' RETURNING id",
	    7, p, err);
	if (res == NULL)
		goto out;
	PQclear(res);
	rc = account_load(c, o->directory_url, out, err) == 1 ? 0 : -1;
	goto out;
oom:
	cf_errf(err, "account register: out of memory");
out:
	cf_secret_free(key_pem);
	free(sealed);
	EVP_PKEY_free(key);
	acmesync_reply_clear(&reply);
	acmesync_close(&ca);
	json_decref(payload);
	json_decref(contacts);
	free(text);
	cf_buf_free(&contact_lit);
	return rc;
}

/* Creates dir and its missing parents, 0700; 0 or -1 with err set. */
static int
mkdir_private(const char *dir, cf_err *err)
{
	char path[4096];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path)) {
		cf_errf(err, "key rollover: folder \"%s\": bad path", dir);
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(path, 0700) != 0 && errno != EEXIST) {
				cf_errf(err, "key rollover: mkdir %s: %s", path, strerror(errno));
				return -1;
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

/* Writes text to path, new, 0600, then fsyncs it and its folder; 0 or -1 with err set. */
static int
write_private(const char *path, const char *dir, const char *text, cf_err *err)
{
	size_t n = strlen(text), off = 0;
	ssize_t w;
	int fd, dfd, rc = -1;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		cf_errf(err, "key rollover: creating %s: %s", path, strerror(errno));
		return -1;
	}
	while (off < n && (w = write(fd, text + off, n - off)) > 0)
		off += (size_t)w;
	if (off != n || fsync(fd) != 0) {
		cf_errf(err, "key rollover: writing %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		rc = fsync(dfd) == 0 ? 0 : -1;
		close(dfd);
	}
	if (rc != 0)
		cf_errf(err, "key rollover: fsync of folder %s: %s", dir, strerror(errno));
	return rc;
}

/* The sealed key of the pending file path (a private regular file of this user); NULL with err set. */
static char *
read_pending(const char *path, cf_err *err)
{
	struct stat st;
	char *buf = NULL;
	ssize_t r;
	size_t n = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		cf_errf(err, "key rollover: %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 || st.st_uid != geteuid() ||
	    st.st_size <= 0 || st.st_size > 65536) {
		cf_errf(err, "key rollover: %s: not a private file of this user (0600) holding a sealed key", path);
		goto fail;
	}
	if ((buf = calloc(1, (size_t)st.st_size + 1)) == NULL) {
		cf_errf(err, "key rollover: out of memory");
		goto fail;
	}
	while (n < (size_t)st.st_size && (r = read(fd, buf + n, (size_t)st.st_size - n)) > 0)
		n += (size_t)r;
	close(fd);
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

/* Stores the key sealed (thumbprint thumb) in a's row, which must still hold old_thumb. */
static int
store_new_key(PGconn *c, const struct account *a, const char *sealed, const char *thumb, const char *old_thumb,
    cf_err *err)
{
	char id[24];
	const char *p[] = { id, sealed, thumb, old_thumb };
	PGresult *res;
	int rc = -1;

	snprintf(id, sizeof(id), "%" PRId64, a->id);
	res = db_exec(c, "storing the new account key",
	    "UPDATE accounts SET key_pem = $2, key_thumbprint = $3, key_rolled_at = now() "
	    "WHERE id = $1 AND key_thumbprint = $4 RETURNING id", 4, p, err);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1)
		rc = 0;
	else
		cf_errf(err, "storing the new account key: account %s no longer holds the key %s", id, old_thumb);
	PQclear(res);
	return rc;
}

/* Whether the CA takes key as the key of a (a POST-as-GET of the account): 1, 0, or -1 no answer. */
static int
ca_holds(struct acmesync *ca, const struct account *a, EVP_PKEY *key, cf_err *err)
{
	struct acmesync_reply reply;
	int rc;

	if (acmesync_post(ca, key, a->account_url, a->account_url, NULL, &reply, err) != 0)
		return -1;
	rc = reply.status == 200;
	acmesync_reply_clear(&reply);
	return rc;
}

/*
 * Finishes the rollover whose new key waits in path: 1 when the CA holds it (now stored too),
 * 0 when the CA holds old (the file is removed), -1 with err (the file stays).
 */
static int
finish_pending(PGconn *c, struct acmesync *ca, struct account *a, EVP_PKEY *old, const char *old_thumb,
    const char *path, cf_err *err)
{
	char *sealed = NULL, *pem = NULL, thumb[44];
	EVP_PKEY *key = NULL;
	int holds, rc = -1;

	if ((sealed = read_pending(path, err)) == NULL ||
	    (pem = keyring_open(keyring_installed(), SEAL_AT_ACCOUNTS, sealed, err)) == NULL ||
	    (key = key_from_pem(pem, err)) == NULL || jwk_thumbprint(key, thumb, err) != 0)
		goto out;
	if ((holds = ca_holds(ca, a, key, err)) < 0)
		goto out;
	if (holds) {
		if (store_new_key(c, a, sealed, thumb, old_thumb, err) != 0)
			goto out;
		free(a->thumbprint);
		a->thumbprint = cf_strdup(thumb);
		unlink(path);
		rc = 1;
		goto out;
	}
	if ((holds = ca_holds(ca, a, old, err)) < 0)
		goto out;
	if (!holds) {
		cf_errf(err, "the CA %s takes neither the stored key nor the new key of %s for account %s",
		    a->directory_url, path, a->account_url);
		goto out;
	}
	unlink(path);
	rc = 0;
out:
	cf_secret_free(pem);
	free(sealed);
	EVP_PKEY_free(key);
	return rc;
}

/* The payload of the inner JWS: {"account":URL,"oldKey":JWK}. NULL with err set. */
static char *
keychange_payload(const struct account *a, EVP_PKEY *old, cf_err *err)
{
	char *jwk = NULL, *text = NULL;
	json_t *doc = NULL, *k;

	if ((jwk = jwk_json(old, err)) == NULL)
		return NULL;
	if ((k = json_loads(jwk, 0, NULL)) == NULL ||
	    (doc = json_pack("{s:s, s:o}", "account", a->account_url, "oldKey", k)) == NULL ||
	    (text = json_dumps(doc, JSON_COMPACT)) == NULL)
		cf_errf(err, "key rollover: out of memory");
	json_decref(doc);
	free(jwk);
	return text;
}

/*
 * Takes the session's advisory lock of account id's rollover (released when the connection
 * ends): two rollovers at once would take each other's pending key for a stale one. 0, or -1
 * with err when another holds it or the database failed.
 */
static int
rollover_lock(PGconn *c, int64_t id, cf_err *err)
{
	char ids[24];
	const char *p[] = { ids };
	PGresult *res;
	int rc = -1;

	snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = db_exec(c, "taking the rollover lock",
	    "SELECT pg_try_advisory_lock(hashtext('certfleet account rollover'), ($1::bigint % 2147483647)::int)",
	    1, p, err);
	if (res == NULL)
		return -1;
	if (PQgetvalue(res, 0, 0)[0] == 't')
		rc = 0;
	else
		cf_errf(err, "another 'certfleet account rollover' of account %s is running", ids);
	PQclear(res);
	return rc;
}

/* A new key of old's type (EC P-256, or RSA of its size); NULL with err set. */
static EVP_PKEY *
key_like(EVP_PKEY *old, cf_err *err)
{
	if (EVP_PKEY_is_a(old, "RSA"))
		return key_generate(EVP_PKEY_get_bits(old) > 2048 ? KEY_RSA3072 : KEY_RSA2048, err);
	return key_generate(KEY_EC_P256, err);
}

int
account_rollover(PGconn *c, struct account *a, const struct http_settings *hs, const char *pending_dir,
    bool *resumed, cf_err *err)
{
	struct acmesync ca = { 0 };
	struct acmesync_reply reply = { 0 };
	EVP_PKEY *old = NULL, *key = NULL;
	char *pem = NULL, *sealed = NULL, *payload = NULL, *inner = NULL, path[4200], thumb[44], old_thumb[44];
	const char *url;
	struct stat st;
	bool written = false;
	cf_err e;
	int rc = -1, done;

	*resumed = false;
	if (rollover_lock(c, a->id, err) != 0)
		goto out;
	/* the key as it is now, under the lock: its thumbprint names the pending file */
	if (account_load_key(c, a, err) != 0 || (old = key_from_pem(a->key_pem, err)) == NULL ||
	    jwk_thumbprint(old, old_thumb, err) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/rollover-%" PRId64 "-%s.key", pending_dir, a->id, old_thumb);
	if (acmesync_open(&ca, hs, a->directory_url, err) != 0)
		goto out;
	if ((url = acmesync_resource(&ca, "keyChange")) == NULL) {
		cf_errf(err, "the ACME directory %s has no keyChange: the CA cannot roll account keys over",
		    a->directory_url);
		goto out;
	}
	if (stat(path, &st) == 0) {
		if ((done = finish_pending(c, &ca, a, old, old_thumb, path, err)) < 0) {
			cf_errf(&e, "%s; a rollover begun earlier left its new key in %s, which stays", err->msg, path);
			*err = e;
			goto out;
		}
		if (done == 1) {
			*resumed = true;
			rc = 0;
			goto out;
		}
	}
	if ((key = key_like(old, err)) == NULL || jwk_thumbprint(key, thumb, err) != 0 ||
	    (pem = key_to_pem(key, err)) == NULL ||
	    (sealed = keyring_seal(keyring_installed(), SEAL_AT_ACCOUNTS, pem, err)) == NULL)
		goto out;
	/* the new key is on disk before the CA knows it: whatever fails next, it is not lost */
	if (mkdir_private(pending_dir, err) != 0 || write_private(path, pending_dir, sealed, err) != 0)
		goto out;
	written = true;
	if ((payload = keychange_payload(a, old, err)) == NULL ||
	    (inner = jws_sign_nonceless(key, url, payload, err)) == NULL)
		goto out;
	if (acmesync_post(&ca, old, a->account_url, url, inner, &reply, &e) != 0) {
		cf_errf(err, "keyChange %s: no answer from the CA (%s); the new key waits sealed in %s: run "
		    "'certfleet account rollover' again, which asks the CA which key it holds", url, e.msg, path);
		written = false; /* kept */
		goto out;
	}
	if (reply.status != 200) {
		cf_errf(err, "keyChange %s: the CA refused: %s; the account keeps its key", url, reply.text);
		goto out;
	}
	if (store_new_key(c, a, sealed, thumb, old_thumb, &e) != 0) {
		cf_errf(err, "THE CA NOW HOLDS THE NEW KEY of account %s, but storing it failed (%s). The new key "
		    "is in %s (sealed): run 'certfleet account rollover' again once the database is back, and it "
		    "stores that key; until then no order of this account can be signed. Do not delete the file.",
		    a->account_url, e.msg, path);
		written = false; /* kept */
		goto out;
	}
	free(a->thumbprint);
	a->thumbprint = cf_strdup(thumb);
	rc = 0;
out:
	if (written)
		unlink(path);
	cf_secret_free(a->key_pem);
	a->key_pem = NULL;
	cf_secret_free(pem);
	free(sealed);
	free(payload);
	free(inner);
	EVP_PKEY_free(old);
	EVP_PKEY_free(key);
	acmesync_reply_clear(&reply);
	acmesync_close(&ca);
	return rc;
}
