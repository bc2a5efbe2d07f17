/*
 * rewrap.c - re-sealing stored private keys in batches: each batch locks its rows (FOR UPDATE),
 * opens and seals them in this process, and writes them back with one UPDATE over unnest() arrays,
 * in one transaction, so that a row changed meanwhile by a run (an order's key cleared) is not
 * written back from a stale copy.
 */
#include "rewrap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "pgarray.h"
#include "seal.h"

/* The tables that hold keys; their column is key_pem and their place "<table>.key_pem". */
static const struct {
	const char *table;
	const char *place;
	const char *select;
	const char *update;
} tables[] = {
	{ "accounts", SEAL_AT_ACCOUNTS,
	  "SELECT id, key_pem FROM accounts WHERE id > $1 AND key_pem IS NOT NULL AND key_pem NOT LIKE $2 "
	  "ORDER BY id LIMIT 1000 FOR UPDATE",
	  "UPDATE accounts a SET key_pem = u.k FROM unnest($1::bigint[], $2::text[]) AS u(i, k) WHERE a.id = u.i" },
	{ "orders", SEAL_AT_ORDERS,
	  "SELECT id, key_pem FROM orders WHERE id > $1 AND key_pem IS NOT NULL AND key_pem NOT LIKE $2 "
	  "ORDER BY id LIMIT 1000 FOR UPDATE",
	  "UPDATE orders o SET key_pem = u.k FROM unnest($1::bigint[], $2::text[]) AS u(i, k) WHERE o.id = u.i" },
	{ "results", SEAL_AT_RESULTS,
	  "SELECT id, key_pem FROM results WHERE id > $1 AND key_pem IS NOT NULL AND key_pem NOT LIKE $2 "
	  "ORDER BY id LIMIT 1000 FOR UPDATE",
	  "UPDATE results r SET key_pem = u.k FROM unnest($1::bigint[], $2::text[]) AS u(i, k) WHERE r.id = u.i" },
};

_Static_assert(REWRAP_BATCH == 1000, "the LIMIT of the statements above");

int
rewrap_check(PGconn *c, const struct keyring *kr, long *plain, cf_err *err)
{
	PGresult *res;
	int rc = -1;

	*plain = 0;
	res = db_exec(c, "counting the stored keys",
	    "SELECT CASE WHEN k LIKE 'cfseal1:%' THEN substr(k, 9, 16) END AS kek, count(*) AS n FROM ("
	    "SELECT key_pem AS k FROM accounts UNION ALL SELECT key_pem FROM orders UNION ALL "
	    "SELECT key_pem FROM results) s WHERE k IS NOT NULL GROUP BY 1 ORDER BY 1",
	    0, NULL, err);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++) {
		const char *kek = db_get(res, r, "kek");
		long n = (long)db_get_i64(res, r, "n");
		if (kek == NULL) {
			*plain = n;
		} else if (kr != NULL && !keyring_knows(kr, kek)) {
			cf_errf(err, "%ld stored key%s sealed under key-encryption key %s, which is not loaded: set %s "
			    "(or %s) to the file of that key; nothing was changed", n, n == 1 ? " is" : "s are", kek,
			    KEYRING_ENV_FILE, KEYRING_ENV_OLD);
			goto out;
		}
	}
	rc = 0;
out:
	PQclear(res);
	return rc;
}

/* One batch of table t after *last: re-sealed and written back in one transaction; *n rows. */
static int
rewrap_batch(PGconn *c, const struct keyring *kr, size_t t, const char *pattern, int64_t *last, long *n,
    cf_err *err)
{
	struct pgarray ids = { 0 }, keys = { 0 };
	char after[24];
	const char *p[] = { after, pattern }, *up[2];
	PGresult *res = NULL;
	bool tx = false;
	int rc = -1;

	*n = 0;
	snprintf(after, sizeof(after), "%" PRId64, *last);
	if (db_run(c, "BEGIN", "BEGIN", 0, NULL, err) != 0)
		goto out;
	tx = true;
	if ((res = db_exec(c, tables[t].table, tables[t].select, 2, p, err)) == NULL)
		goto out;
	for (int r = 0; r < PQntuples(res); r++) {
		char *plain = keyring_open(kr, tables[t].place, db_get(res, r, "key_pem"), err), *sealed = NULL;
		if (plain != NULL)
			sealed = keyring_seal(kr, tables[t].place, plain, err);
		cf_secret_free(plain);
		if (sealed == NULL) {
			char msg[sizeof(err->msg)];
			snprintf(msg, sizeof(msg), "%s", err->msg);
			cf_errf(err, "%s row %s: %.400s", tables[t].table, db_get(res, r, "id"), msg);
			goto out;
		}
		pgarray_add_i64(&ids, db_get_i64(res, r, "id"));
		pgarray_add(&keys, sealed);
		free(sealed);
		*last = db_get_i64(res, r, "id");
		(*n)++;
	}
	if (*n > 0) {
		up[0] = pgarray_finish(&ids);
		up[1] = pgarray_finish(&keys);
		if (up[0] == NULL || up[1] == NULL) {
			cf_errf(err, "re-sealing %s: out of memory", tables[t].table);
			goto out;
		}
		if (db_run(c, tables[t].table, tables[t].update, 2, up, err) != 0)
			goto out;
	}
	if (db_run(c, "COMMIT", "COMMIT", 0, NULL, err) != 0)
		goto out;
	tx = false;
	rc = 0;
out:
	if (tx)
		PQclear(PQexec(c, "ROLLBACK"));
	/* the result held keys in clear when the database had plain ones */
	PQclear(res);
	pgarray_free(&ids);
	pgarray_free(&keys);
	return rc;
}

int
rewrap_all(PGconn *c, const struct keyring *kr, bool only_plain, struct rewrap_counts *out, cf_err *err)
{
	const char *cur = keyring_current_id(kr);
	long *count[] = { &out->accounts, &out->orders, &out->results };
	char pattern[64];

	memset(out, 0, sizeof(*out));
	if (cur == NULL) {
		cf_errf(err, "re-sealing keys: no key-encryption key: set %s", KEYRING_ENV_FILE);
		return -1;
	}
	/* what is left alone: every sealed value (only_plain), or those sealed under the current KEK */
	if (only_plain)
		snprintf(pattern, sizeof(pattern), "%s%%", SEAL_PREFIX);
	else
		snprintf(pattern, sizeof(pattern), "%s%s:%%", SEAL_PREFIX, cur);
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		int64_t last = 0;
		long n;
		do {
			if (rewrap_batch(c, kr, t, pattern, &last, &n, err) != 0)
				return -1;
			*count[t] += n;
		} while (n == REWRAP_BATCH);
	}
	return 0;
}
