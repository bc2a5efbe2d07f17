/*
 * account.c - ACME account registration (RFC 8555 7.3), run synchronously by the CLI, and the
 * accounts table. The account key is generated here and goes only to the database.
 */
#include "account.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "jws.h"
#include "keyring.h"
#include "keys.h"
#include "log.h"
#include "pgarray.h"

#define REGISTER_BADNONCE_RETRIES 5

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
	memset(a, 0, sizeof(*a));
}

/* The columns of an account without its key, as account_from_row reads them. */
#define ACCOUNT_COLUMNS                                                                            \
	"id, directory_url, account_url, key_thumbprint, array_to_string(contact, ',') AS contact, "   \
	"issuer_domain, created_at::text AS created_at "

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
	if ((src->directory_url && !dst->directory_url) || (src->account_url && !dst->account_url) ||
	    (src->thumbprint && !dst->thumbprint) || (src->contact && !dst->contact) ||
	    (src->issuer && !dst->issuer) || (src->created_at && !dst->created_at)) {
		account_clear(dst);
		return -1;
	}
	return 0;
}

int
account_load(PGconn *c, const char *directory_url, struct account *out, cf_err *err)
{
	const char *p[] = { directory_url };
	PGresult *res;

	memset(out, 0, sizeof(*out));
	res = db_exec(c, "loading the account",
	    "SELECT " ACCOUNT_COLUMNS
	    "FROM accounts WHERE directory_url = $1 AND status = 'valid' ORDER BY id DESC LIMIT 1",
	    1, p, err);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	account_from_row(res, 0, out);
	PQclear(res);
	return 1;
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

static json_t *
get_json(const struct http_settings *hs, const char *url, cf_err *err)
{
	struct http_req *req = http_req_new(hs, url, NULL, NULL, false, err);
	json_t *doc = NULL;

	if (req == NULL)
		return NULL;
	if (http_req_perform(req, err) != 0)
		goto out;
	if (req->status != 200) {
		cf_errf(err, "GET %s: HTTP %ld", url, req->status);
		goto out;
	}
	doc = req->body.data ? json_loadb(req->body.data, req->body.len, 0, NULL) : NULL;
	if (!json_is_object(doc)) {
		json_decref(doc);
		doc = NULL;
		cf_errf(err, "GET %s: the answer is not a JSON object", url);
	}
out:
	http_req_free(req);
	return doc;
}

static char *
new_nonce(const struct http_settings *hs, const char *url, cf_err *err)
{
	struct http_req *req = http_req_new(hs, url, NULL, NULL, true, err);
	char *nonce = NULL;

	if (req == NULL)
		return NULL;
	if (http_req_perform(req, err) == 0) {
		if (req->nonce)
			nonce = strdup(req->nonce);
		else
			cf_errf(err, "newNonce %s: no Replay-Nonce header (HTTP %ld)", url, req->status);
	}
	http_req_free(req);
	return nonce;
}

/* POSTs newAccount with an embedded JWK; sets *location. Retries badNonce. */
static int
post_new_account(const struct http_settings *hs, EVP_PKEY *key, const char *nonce_url,
    const char *url, const char *payload, char **location, cf_err *err)
{
	char *nonce = new_nonce(hs, nonce_url, err);
	int rc = -1;

	for (int attempt = 0; nonce && attempt <= REGISTER_BADNONCE_RETRIES; attempt++) {
		char *jws = jws_sign(key, NULL, nonce, url, payload, err);
		struct http_req *req = jws ? http_req_new(hs, url, jws, "application/jose+json", false, err) : NULL;
		free(jws);
		free(nonce);
		nonce = NULL;
		if (req == NULL || http_req_perform(req, err) != 0) {
			http_req_free(req);
			break;
		}
		json_t *doc = req->body.data ? json_loadb(req->body.data, req->body.len, 0, NULL) : NULL;
		const char *type = json_string_value(json_object_get(doc, "type"));
		if ((req->status == 201 || req->status == 200) && req->location) {
			*location = strdup(req->location);
			rc = *location ? 0 : -1;
		} else if (req->status == 400 && type && strcmp(type, "urn:ietf:params:acme:error:badNonce") == 0 &&
		    req->nonce) {
			nonce = strdup(req->nonce);
		} else {
			const char *detail = json_string_value(json_object_get(doc, "detail"));
			cf_errf(err, "newAccount %s: HTTP %ld %s%s%s", url, req->status, type ? type : "",
			    detail ? ": " : "", detail ? detail : "");
		}
		json_decref(doc);
		http_req_free(req);
		if (rc == 0 || nonce == NULL)
			break;
	}
	free(nonce);
	return rc;
}

int
account_register(PGconn *c, const struct account_register_opts *o, struct account *out, cf_err *err)
{
	json_t *dir = NULL, *payload = NULL, *contacts = NULL;
	EVP_PKEY *key = NULL;
	char *text = NULL, *location = NULL, *key_pem = NULL, *sealed = NULL, *arr = NULL;
	char thumb[44];
	const char *new_account, *nonce_url, *tos, *issuer = o->issuer;
	cf_buf contact_lit = { 0 };
	int rc = -1;

	memset(out, 0, sizeof(*out));
	dir = get_json(&o->http, o->directory_url, err);
	if (dir == NULL)
		goto out;
	new_account = json_string_value(json_object_get(dir, "newAccount"));
	nonce_url = json_string_value(json_object_get(dir, "newNonce"));
	tos = json_string_value(json_object_get(json_object_get(dir, "meta"), "termsOfService"));
	if (issuer == NULL)
		issuer = json_string_value(json_array_get(json_object_get(json_object_get(dir, "meta"),
		    "caaIdentities"), 0));
	if (new_account == NULL || nonce_url == NULL) {
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
	text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
	if (text == NULL)
		goto oom;
	key = key_generate(KEY_EC_P256, err);
	if (key == NULL || jwk_thumbprint(key, thumb, err) != 0 || (key_pem = key_to_pem(key, err)) == NULL)
		goto out;
	/* sealed before the CA sees the account: without a KEK nothing is registered */
	if ((sealed = keyring_seal(keyring_installed(), SEAL_AT_ACCOUNTS, key_pem, err)) == NULL)
		goto out;
	if (post_new_account(&o->http, key, nonce_url, new_account, text, &location, err) != 0)
		goto out;
	const char *p[] = { o->directory_url, location, sealed, thumb, contact_lit.data, issuer };
	PGresult *res = db_exec(c, "storing the account",
	    "INSERT INTO accounts (directory_url, account_url, key_pem, key_thumbprint, contact, issuer_domain) "
	    "VALUES ($1, $2, $3, $4, $5::text[], $6) "
	    "ON CONFLICT (directory_url, account_url) DO UPDATE SET status = 'valid' RETURNING id",
	    6, p, err);
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
	json_decref(dir);
	json_decref(payload);
	json_decref(contacts);
	free(text);
	free(location);
	free(arr);
	cf_buf_free(&contact_lit);
	return rc;
}
