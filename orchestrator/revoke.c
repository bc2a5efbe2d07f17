/*
 * revoke.c - revocation (RFC 8555 7.6): selects results, sends revokeCert to the CA of each
 * one's account through the CLI's synchronous ACME client, and records what the CA revoked.
 */
#include "revoke.h"

#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "acmesync.h"
#include "base64.h"
#include "db.h"
#include "der.h"
#include "keyring.h"
#include "keys.h"
#include "log.h"
#include "pgarray.h"

/* The reasons Let's Encrypt accepts from subscribers, with their CRL reason codes. */
static const struct {
	const char *name;
	int code;
} reasons[] = {
	{ "unspecified", 0 },
	{ "keyCompromise", 1 },
	{ "superseded", 4 },
	{ "cessationOfOperation", 5 },
};

int
revoke_reason_code(const char *name)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (strcmp(name, reasons[i].name) == 0)
			return reasons[i].code;
	}
	return -1;
}

/*
 * One row per result selected: by certificate, name or run its current result, by serial any
 * result (the serial as stored is whole octets: an odd-length one has its leading zero). The
 * account is the certificate's, else that of the job that issued it.
 */
static const char *const sql_select =
    "SELECT r.id, r.certificate_id, COALESCE(c.account_id, j.account_id, 0) AS account_id, r.serial, "
    "array_to_string(c.names, ',') AS names, r.leaf_pem, r.revoked_at IS NOT NULL AS revoked, "
    "COALESCE(j.run_id, 0) AS run_id, r.is_current "
    "FROM results r JOIN certificates c ON c.id = r.certificate_id LEFT JOIN jobs j ON j.id = r.job_id "
    "WHERE (r.is_current AND (r.certificate_id = ANY($1::bigint[]) OR c.names && $2::text[] "
    "OR j.run_id = ANY($4::bigint[]))) OR r.serial = ANY($3::text[]) "
    "ORDER BY 3, 1";

void
revoke_targets_free(struct revoke_target *t, size_t n)
{
	for (size_t i = 0; t != NULL && i < n; i++) {
		free(t[i].serial);
		free(t[i].names);
		free(t[i].leaf_pem);
	}
	free(t);
}

/* Whether the comma-separated list names holds name. */
static bool
names_has(const char *names, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = names; p != NULL && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (strncmp(p, name, len) == 0 && (p[len] == ',' || p[len] == '\0'))
			return true;
	}
	return false;
}

/* The serial as results store it: s (lowercase hex, no leading zeros) in whole octets. */
static void
serial_stored(const char *s, char *out, size_t len)
{
	snprintf(out, len, "%s%s", strlen(s) % 2 ? "0" : "", s);
}

/* Checks that every selector named a result of res; 1 with err naming the first that did not. */
static int
select_check(const struct revoke_sel *sel, PGresult *res, cf_err *err)
{
	int rows = PQntuples(res);
	char stored[600];
	bool hit;

	for (size_t i = 0; i < sel->ncerts; i++) {
		hit = false;
		for (int r = 0; r < rows && !hit; r++)
			hit = db_get(res, r, "is_current")[0] == 't' && db_get_i64(res, r, "certificate_id") == sel->certs[i];
		if (!hit) {
			cf_errf(err, "--certificate %" PRId64 ": no such certificate with an issued certificate", sel->certs[i]);
			return 1;
		}
	}
	for (size_t i = 0; i < sel->nnames; i++) {
		hit = false;
		for (int r = 0; r < rows && !hit; r++)
			hit = db_get(res, r, "is_current")[0] == 't' && names_has(db_get(res, r, "names"), sel->names[i]);
		if (!hit) {
			cf_errf(err, "--name %s: no certificate of the fleet with that name has been issued", sel->names[i]);
			return 1;
		}
	}
	for (size_t i = 0; i < sel->nserials; i++) {
		hit = false;
		serial_stored(sel->serials[i], stored, sizeof(stored));
		for (int r = 0; r < rows && !hit; r++)
			hit = strcmp(db_get(res, r, "serial"), stored) == 0;
		if (!hit) {
			cf_errf(err, "--serial %s: no certificate with that serial number in results", sel->serials[i]);
			return 1;
		}
	}
	for (size_t i = 0; i < sel->nruns; i++) {
		hit = false;
		for (int r = 0; r < rows && !hit; r++)
			hit = db_get(res, r, "is_current")[0] == 't' && db_get_i64(res, r, "run_id") == sel->runs[i];
		if (!hit) {
			cf_errf(err, "--run %" PRId64 ": no current certificate was issued in that run", sel->runs[i]);
			return 1;
		}
	}
	return 0;
}

int
revoke_select(PGconn *c, const struct revoke_sel *sel, struct revoke_target **out, size_t *n, cf_err *err)
{
	struct pgarray a[4] = { 0 };
	const char *p[4];
	PGresult *res = NULL;
	struct revoke_target *t = NULL;
	char stored[600];
	int rows, rc = -1;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < sel->ncerts; i++)
		pgarray_add_i64(&a[0], sel->certs[i]);
	for (size_t i = 0; i < sel->nnames; i++)
		pgarray_add(&a[1], sel->names[i]);
	for (size_t i = 0; i < sel->nserials; i++) {
		serial_stored(sel->serials[i], stored, sizeof(stored));
		pgarray_add(&a[2], stored);
	}
	for (size_t i = 0; i < sel->nruns; i++)
		pgarray_add_i64(&a[3], sel->runs[i]);
	for (int i = 0; i < 4; i++) {
		if ((p[i] = pgarray_finish(&a[i])) == NULL) {
			cf_errf(err, "revoke: out of memory");
			goto out;
		}
	}
	if ((res = db_exec(c, "selecting the results to revoke", sql_select, 4, p, err)) == NULL)
		goto out;
	if ((rc = select_check(sel, res, err)) != 0)
		goto out;
	rc = -1;
	rows = PQntuples(res);
	if (rows > 0 && (t = calloc((size_t)rows, sizeof(*t))) == NULL) {
		cf_errf(err, "revoke: out of memory for %d results", rows);
		goto out;
	}
	for (int r = 0; r < rows; r++, k++) {
		t[k].result_id = db_get_i64(res, r, "id");
		t[k].certificate_id = db_get_i64(res, r, "certificate_id");
		t[k].account_id = db_get_i64(res, r, "account_id");
		t[k].serial = cf_strdup(db_get(res, r, "serial"));
		t[k].names = cf_strdup(db_get(res, r, "names"));
		t[k].leaf_pem = cf_strdup(db_get(res, r, "leaf_pem"));
		t[k].state = db_get(res, r, "revoked")[0] == 't' ? REVOKE_ALREADY : REVOKE_PENDING;
		if (t[k].serial == NULL || t[k].names == NULL || t[k].leaf_pem == NULL) {
			cf_errf(err, "revoke: out of memory");
			k++;
			goto out;
		}
	}
	*out = t;
	*n = k;
	t = NULL;
	rc = 0;
out:
	revoke_targets_free(t, k);
	PQclear(res);
	for (int i = 0; i < 4; i++)
		pgarray_free(&a[i]);
	return rc;
}

/* The revokeCert payload for t: {"certificate":base64url(DER),"reason":code}. NULL with err set. */
static char *
revoke_payload(const struct revoke_target *t, int code, cf_err *err)
{
	unsigned char *der = NULL;
	size_t len = 0;
	char *b64 = NULL, *text = NULL;
	json_t *doc = NULL;

	if (pem_decode_strict(t->leaf_pem, "CERTIFICATE", &der, &len) != 0) {
		cf_errf(err, "result %" PRId64 ": the stored certificate is not PEM", t->result_id);
		goto out;
	}
	if ((b64 = b64url_encode(der, len)) == NULL ||
	    (doc = json_pack("{s:s, s:i}", "certificate", b64, "reason", code)) == NULL ||
	    (text = json_dumps(doc, JSON_COMPACT)) == NULL)
		cf_errf(err, "result %" PRId64 ": out of memory", t->result_id);
out:
	free(der);
	free(b64);
	json_decref(doc);
	return text;
}

/* The private key of result id, opened with the keyring; NULL with err set. */
static EVP_PKEY *
result_key(PGconn *c, int64_t id, cf_err *err)
{
	char ids[24];
	const char *p[] = { ids };
	PGresult *res;
	char *pem = NULL;
	EVP_PKEY *key = NULL;

	snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = db_exec(c, "loading the certificate key", "SELECT key_pem FROM results WHERE id = $1", 1, p, err);
	if (res == NULL)
		return NULL;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
		cf_errf(err, "result %s: no key stored", ids);
	else if ((pem = keyring_open(keyring_installed(), SEAL_AT_RESULTS, PQgetvalue(res, 0, 0), err)) != NULL)
		key = key_from_pem(pem, err);
	cf_secret_free(pem);
	PQclear(res);
	return key;
}

/* The CA side of one account: its directory and key, set up for its first target. */
struct revoke_ca {
	int64_t account_id;
	struct account acct;
	EVP_PKEY *key;              /* the account key, loaded for the first target signed with it */
	struct acmesync ca;
	bool open;
	char problem[600];          /* set when this account cannot be used: every target fails with it */
	bool unreachable;           /* the problem is that the CA gave no answer */
};

static void
revoke_ca_clear(struct revoke_ca *rca)
{
	account_clear(&rca->acct);
	EVP_PKEY_free(rca->key);
	acmesync_close(&rca->ca);
	memset(rca, 0, sizeof(*rca));
}

/* Sets rca up for account_id. 0 (rca->problem may say why the account cannot be used), -1 on a DB failure. */
static int
revoke_ca_open(PGconn *c, struct revoke_ca *rca, int64_t account_id, const struct http_settings *hs, cf_err *err)
{
	cf_err e;
	int found;

	revoke_ca_clear(rca);
	rca->account_id = account_id;
	if (account_id == 0) {
		snprintf(rca->problem, sizeof(rca->problem), "no account is known for its certificate");
		return 0;
	}
	if ((found = account_load_id(c, account_id, &rca->acct, err)) < 0)
		return -1;
	if (found == 0) {
		snprintf(rca->problem, sizeof(rca->problem), "account %" PRId64 " not found", account_id);
		return 0;
	}
	if (acmesync_open(&rca->ca, hs, rca->acct.directory_url, &e) != 0) {
		snprintf(rca->problem, sizeof(rca->problem), "the CA is unreachable: %s", e.msg);
		rca->unreachable = true;
		return 0;
	}
	rca->open = true;
	if (acmesync_resource(&rca->ca, "revokeCert") == NULL)
		snprintf(rca->problem, sizeof(rca->problem), "the ACME directory %s has no revokeCert",
		    rca->acct.directory_url);
	return 0;
}

/* Records t as revoked with reason; 0 or -1 with err set. */
static int
revoke_mark(PGconn *c, const struct revoke_target *t, const char *reason, cf_err *err)
{
	char ids[24];
	const char *p[] = { ids, reason };

	snprintf(ids, sizeof(ids), "%" PRId64, t->result_id);
	return db_run(c, "recording the revocation",
	    "UPDATE results SET revoked_at = now(), revocation_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
	    2, p, err);
}

/*
 * Revokes t at rca's CA. 0 (t->state says how it went; when the CA gave no answer, rca->problem
 * says so for the account's other targets too), -1 with err when the database failed.
 */
static int
revoke_one(PGconn *c, struct revoke_ca *rca, struct revoke_target *t, const char *reason, cf_err *err)
{
	struct acmesync_reply reply = { 0 };
	EVP_PKEY *cert_key = NULL, *key;
	const char *kid = NULL;
	char *payload = NULL;
	cf_err e;
	int code = revoke_reason_code(reason), rc = 0;

	if ((payload = revoke_payload(t, code, &e)) == NULL)
		goto refused;
	if (code == 1) { /* keyCompromise: proven with the certificate's own key */
		if ((cert_key = result_key(c, t->result_id, &e)) == NULL)
			goto refused;
		key = cert_key;
	} else {
		if (rca->key == NULL) {
			if (account_load_key(c, &rca->acct, &e) != 0 || (rca->key = key_from_pem(rca->acct.key_pem, &e)) == NULL) {
				cf_secret_free(rca->acct.key_pem);
				rca->acct.key_pem = NULL;
				goto refused;
			}
			cf_secret_free(rca->acct.key_pem);
			rca->acct.key_pem = NULL;
		}
		key = rca->key;
		kid = rca->acct.account_url;
	}
	if (acmesync_post(&rca->ca, key, kid, acmesync_resource(&rca->ca, "revokeCert"), payload, &reply, &e) != 0) {
		snprintf(rca->problem, sizeof(rca->problem), "the CA is unreachable: %s", e.msg);
		rca->unreachable = true;
		snprintf(t->why, sizeof(t->why), "%s", rca->problem);
		t->state = REVOKE_FAILED;
		goto out;
	}
	if (reply.status == 200 || acmesync_is_problem(&reply, "alreadyRevoked")) {
		t->state = reply.status == 200 ? REVOKE_DONE : REVOKE_ALREADY;
		if (revoke_mark(c, t, reason, err) != 0) {
			cf_errf(err, "result %" PRId64 " (serial %s) was revoked at the CA, but recording it failed "
			    "(run revoke again to record it): %s", t->result_id, t->serial, err->msg);
			rc = -1;
		}
		goto out;
	}
	snprintf(t->why, sizeof(t->why), "the CA refused: %s", reply.text);
	t->state = REVOKE_FAILED;
	goto out;
refused:
	snprintf(t->why, sizeof(t->why), "%s", e.msg);
	t->state = REVOKE_FAILED;
out:
	EVP_PKEY_free(cert_key);
	free(payload);
	acmesync_reply_clear(&reply);
	return rc;
}

int
revoke_run(PGconn *c, struct revoke_target *t, size_t n, const char *reason, const struct http_settings *hs,
    bool *unreachable, cf_err *err)
{
	struct revoke_ca rca = { 0 };
	bool have = false;
	int ret = 0;

	*unreachable = false;
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (t[i].state != REVOKE_PENDING)
			continue;
		if (!have || rca.account_id != t[i].account_id) {
			*unreachable = *unreachable || rca.unreachable;
			if (revoke_ca_open(c, &rca, t[i].account_id, hs, err) != 0) {
				ret = -1;
				break;
			}
			have = true;
		}
		if (rca.problem[0]) {
			snprintf(t[i].why, sizeof(t[i].why), "%s", rca.problem);
			t[i].state = REVOKE_FAILED;
			continue;
		}
		ret = revoke_one(c, &rca, &t[i], reason, err);
	}
	*unreachable = *unreachable || rca.unreachable;
	revoke_ca_clear(&rca);
	return ret;
}
