/*
 * records.c - the dns-persist-01 records the active fleet needs: read from the certificates
 * (not their jobs, which cleanup deletes), composed in the form each certificate's CA speaks, and
 * written as a zone file, tab-separated lines or JSON.
 */
#include "records.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "db.h"
#include "dnsname.h"
#include "pgarray.h"
#include "txtzone.h"

int
records_format_parse(const char *text, enum records_format *out, cf_err *err)
{
	char q[64 * 4 + 8];

	if (strcmp(text, "zone") == 0)
		*out = RECORDS_ZONE;
	else if (strcmp(text, "tsv") == 0)
		*out = RECORDS_TSV;
	else if (strcmp(text, "json") == 0)
		*out = RECORDS_JSON;
	else {
		cf_quote(q, sizeof(q), text, strlen(text), 64);
		cf_errf(err, "--format \"%s\": expected zone, tsv or json", q);
		return -1;
	}
	return 0;
}

/* The issuer run would pick from names: the account's when listed (or nothing listed), else the first. */
static const char *
pick_issuer(const char *mine, json_t *names)
{
	size_t i;
	json_t *v;

	if (!json_is_array(names) || json_array_size(names) == 0 || !json_is_string(json_array_get(names, 0)))
		return mine;
	json_array_foreach(names, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), mine) == 0)
			return mine;
	return json_string_value(json_array_get(names, 0));
}

int
records_ca_read_directory(struct records_ca *ca, const char *doc, size_t n, cf_err *err)
{
	json_t *dir = json_loadb(doc, n, 0, NULL), *meta, *prefix;
	enum persist_variant variant;
	char *issuer = NULL, *hash_prefix = NULL;
	int rc = -1;

	if (!json_is_object(dir)) {
		cf_errf(err, "ACME directory %s: the answer is not a JSON object", ca->directory_url);
		goto out;
	}
	meta = json_object_get(dir, "meta");
	prefix = json_object_get(meta, "accountHashPrefix");
	variant = json_is_string(prefix) ? PERSIST_DRAFT02 : PERSIST_DRAFT01;
	issuer = cf_strdup(pick_issuer(ca->issuer, json_object_get(meta,
	    variant == PERSIST_DRAFT02 ? "issuerDomainNames" : "caaIdentities")));
	if (issuer == NULL || (variant == PERSIST_DRAFT02 && (hash_prefix = cf_strdup(json_string_value(prefix))) == NULL)) {
		cf_errf(err, "ACME directory %s: out of memory", ca->directory_url);
		goto out;
	}
	free(ca->issuer);
	ca->issuer = issuer;
	issuer = NULL;
	free(ca->hash_prefix);
	ca->hash_prefix = hash_prefix;
	hash_prefix = NULL;
	ca->variant = variant;
	rc = 0;
out:
	free(issuer);
	free(hash_prefix);
	json_decref(dir);
	return rc;
}

void
records_ca_clear(struct records_ca *ca)
{
	if (ca == NULL)
		return;
	free(ca->directory_url);
	free(ca->account_url);
	free(ca->thumbprint);
	free(ca->issuer);
	free(ca->hash_prefix);
	memset(ca, 0, sizeof(*ca));
}

int
records_entry_compose(const struct records_entry *e, int64_t persist_until, char *fqdn, size_t fqdn_len,
    char **value, cf_err *err)
{
	/* as the engine's authz_compose_record: hash_domain is the authorization's identifier, the base */
	struct persist_params p = {
		.variant = e->ca->variant,
		.issuer = e->ca->issuer,
		.account_url = e->ca->account_url,
		.wildcard = e->wildcard,
		.persist_until = persist_until,
		.hash_prefix = e->ca->hash_prefix,
		.thumbprint = e->ca->thumbprint,
		.hash_domain = e->base,
	};

	if (persist_record_name(e->base, fqdn, fqdn_len, err) != 0)
		return -1;
	if ((*value = persist_record_value(&p, err)) == NULL)
		return -1;
	return 0;
}

/* One entry as a JSON object (appended to arr). -1 when out of memory. */
static int
entry_json(json_t *arr, const struct records_entry *e, const char *fqdn, const char *value, int64_t persist_until)
{
	json_t *o = json_object(), *ids = json_array();
	int rc = -1;

	if (o == NULL || ids == NULL)
		goto out;
	for (size_t i = 0; i < e->ncert; i++)
		if (json_array_append_new(ids, json_integer(e->cert_ids[i])) != 0)
			goto out;
	if (json_object_set_new(o, "fqdn", json_string(fqdn)) != 0 ||
	    json_object_set_new(o, "value", json_string(value)) != 0 ||
	    json_object_set_new(o, "issuer", json_string(e->ca->issuer)) != 0 ||
	    json_object_set_new(o, "account", json_string(e->ca->account_url)) != 0 ||
	    json_object_set_new(o, "account_id", json_integer(e->ca->account_id)) != 0 ||
	    json_object_set_new(o, "directory", json_string(e->ca->directory_url)) != 0 ||
	    json_object_set_new(o, "draft", json_integer(e->ca->variant == PERSIST_DRAFT02 ? 2 : 1)) != 0 ||
	    json_object_set_new(o, "wildcard", json_boolean(e->wildcard)) != 0 ||
	    json_object_set_new(o, "persist_until", persist_until > 0 ? json_integer(persist_until) : json_null()) != 0 ||
	    json_object_set(o, "certificates", ids) != 0)
		goto out;
	rc = json_array_append(arr, o);
out:
	json_decref(ids);
	json_decref(o);
	return rc;
}

int
records_write(cf_buf *out, enum records_format format, const struct records_entry *entries, size_t n,
    int64_t persist_until, cf_err *err)
{
	json_t *arr = format == RECORDS_JSON ? json_array() : NULL;
	const struct records_ca *ca = NULL;
	char fqdn[DNSNAME_MAX + 32], *value = NULL, *text = NULL;
	int rc = -1;

	if (format == RECORDS_JSON && arr == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		const struct records_entry *e = &entries[i];
		if (records_entry_compose(e, persist_until, fqdn, sizeof(fqdn), &value, err) != 0)
			goto out;
		if (format == RECORDS_ZONE && e->ca != ca) {
			/* a zone file reads ';' as a comment; the URLs come from the CA and settings: quoted */
			char qa[200 * 4 + 8], qd[200 * 4 + 8];
			cf_quote(qa, sizeof(qa), e->ca->account_url, strlen(e->ca->account_url), 200);
			cf_quote(qd, sizeof(qd), e->ca->directory_url, strlen(e->ca->directory_url), 200);
			if (cf_buf_printf(out, "; account %" PRId64 " %s of the CA %s\n", e->ca->account_id,
			    qa, qd) != 0)
				goto oom;
		}
		ca = e->ca;
		switch (format) {
		case RECORDS_ZONE:
			if (cf_buf_printf(out, "%s. IN TXT ", fqdn) != 0 ||
			    txtzone_quote(out, (const unsigned char *)value, strlen(value), err) != 0 ||
			    cf_buf_append(out, "\n", 1) != 0)
				goto oom;
			break;
		case RECORDS_TSV:
			/* persist_record_value allows no tab or newline in a value */
			if (cf_buf_printf(out, "%s\t%s\n", fqdn, value) != 0)
				goto oom;
			break;
		case RECORDS_JSON:
			if (entry_json(arr, e, fqdn, value, persist_until) != 0)
				goto oom;
			break;
		}
		free(value);
		value = NULL;
	}
	if (format == RECORDS_JSON) {
		if ((text = json_dumps(arr, JSON_INDENT(2) | JSON_ENSURE_ASCII)) == NULL ||
		    cf_buf_printf(out, "%s\n", text) != 0)
			goto oom;
	}
	rc = 0;
	goto out;
oom:
	cf_errf(err, "writing the records: out of memory");
out:
	free(text);
	free(value);
	json_decref(arr);
	return rc;
}

/* Reads "1,2,3" into e->cert_ids. -1 when out of memory. */
static int
entry_ids(struct records_entry *e, const char *list)
{
	size_t n = 1;
	const char *p = list;
	char *end;

	for (; *p; p++)
		n += *p == ',';
	if ((e->cert_ids = calloc(n, sizeof(*e->cert_ids))) == NULL)
		return -1;
	for (p = list; *p && e->ncert < n; p = *end == ',' ? end + 1 : end) {
		e->cert_ids[e->ncert++] = strtoll(p, &end, 10);
		if (end == p)
			break;
	}
	return 0;
}

int
records_load(PGconn *c, const char *directory_url, struct records_ca **cas, size_t *nca,
    struct records_entry **entries, size_t *n, cf_err *err)
{
	const char *p[] = { directory_url };
	PGresult *res;
	int rows, rc = -1;

	*cas = NULL;
	*entries = NULL;
	*nca = *n = 0;
	/*
	 * From certificates, not jobs: cleanup deletes finished jobs, and a certificate renewed long
	 * ago still needs its record. Its CA is certificates.account_id (older rows: their latest
	 * job's). One row per CA, base name and wildcard form: run writes policy=wildcard exactly
	 * when the certificate asks for *.base too, so two certificates of one base name, one with
	 * the wildcard and one without, have two records, as run writes them.
	 */
	res = db_exec(c, "listing the active certificates' records",
	    "WITH fleet AS (SELECT ce.id, ce.names, coalesce(ce.account_id, (SELECT j.account_id FROM jobs j "
	    "WHERE j.certificate_id = ce.id ORDER BY j.id DESC LIMIT 1)) AS account_id "
	    "FROM certificates ce WHERE ce.retired_at IS NULL), "
	    "named AS (SELECT f.id, f.account_id, regexp_replace(n, '^\\*\\.', '') AS base, f.names "
	    "FROM fleet f CROSS JOIN LATERAL unnest(f.names) AS n) "
	    "SELECT nm.account_id, nm.base, ('*.' || nm.base) = ANY (nm.names) AS wildcard, "
	    "array_to_string(array_agg(DISTINCT nm.id ORDER BY nm.id), ',') AS ids "
	    "FROM named nm JOIN accounts a ON a.id = nm.account_id "
	    "WHERE $1::text IS NULL OR a.directory_url = $1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
	    1, p, err);
	if (res == NULL)
		return -1;
	rows = PQntuples(res);
	if (rows > 0 && ((*entries = calloc((size_t)rows, sizeof(**entries))) == NULL ||
	    (*cas = calloc((size_t)rows, sizeof(**cas))) == NULL))
		goto oom;
	for (int r = 0; r < rows; r++) {
		struct records_entry *e = &(*entries)[r];
		int64_t acct = db_get_i64(res, r, "account_id");
		if (*nca == 0 || (*cas)[*nca - 1].account_id != acct) {
			struct account a;
			int found = account_load_id(c, acct, &a, err);
			if (found != 1) {
				if (found == 0)
					cf_errf(err, "account %" PRId64 " is gone", acct);
				account_clear(&a);
				goto out;
			}
			/* the directory is read later (records_ca_from_directory); keep the account's fields */
			struct records_ca *ca = &(*cas)[(*nca)++];
			ca->account_id = acct;
			ca->directory_url = cf_strdup(a.directory_url);
			ca->account_url = cf_strdup(a.account_url);
			ca->thumbprint = cf_strdup(a.thumbprint);
			ca->issuer = cf_strdup(a.issuer);
			account_clear(&a);
			if (!ca->directory_url || !ca->account_url || !ca->thumbprint || !ca->issuer)
				goto oom;
		}
		e->ca = &(*cas)[*nca - 1];
		e->base = cf_strdup(db_get(res, r, "base"));
		e->wildcard = strcmp(db_get(res, r, "wildcard"), "t") == 0;
		(*n)++;
		if (e->base == NULL || entry_ids(e, db_get(res, r, "ids")) != 0)
			goto oom;
	}
	rc = 0;
	goto out;
oom:
	cf_errf(err, "listing the records: out of memory");
out:
	PQclear(res);
	if (rc != 0) {
		records_free(*cas, *nca, *entries, *n);
		*cas = NULL;
		*entries = NULL;
		*nca = *n = 0;
	}
	return rc;
}

int
records_compare_written(PGconn *c, const struct records_entry *entries, size_t n, int64_t persist_until,
    long *differ, char *example, size_t example_len, cf_err *err)
{
	struct pgarray accts = { 0 }, fqdns = { 0 }, values = { 0 };
	char fqdn[DNSNAME_MAX + 32], *value = NULL;
	PGresult *res = NULL;
	int rc = -1;

	*differ = 0;
	if (example_len > 0)
		example[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (records_entry_compose(&entries[i], persist_until, fqdn, sizeof(fqdn), &value, err) != 0)
			goto out;
		pgarray_add_i64(&accts, entries[i].ca->account_id);
		pgarray_add(&fqdns, fqdn);
		pgarray_add(&values, value);
		free(value);
		value = NULL;
	}
	const char *p[] = { pgarray_finish(&accts), pgarray_finish(&fqdns), pgarray_finish(&values) };
	if (p[0] == NULL || p[1] == NULL || p[2] == NULL) {
		cf_errf(err, "comparing the records with those run wrote: out of memory");
		goto out;
	}
	/* the value run wrote last at each such name, for the message */
	res = db_exec(c, "comparing the records with those run wrote",
	    "SELECT e.fqdn, (SELECT r.value FROM records r WHERE r.account_id = e.a AND r.fqdn = e.fqdn "
	    "ORDER BY r.written_at DESC NULLS LAST, r.id DESC LIMIT 1) AS written "
	    "FROM unnest($1::bigint[], $2::text[], $3::text[]) AS e(a, fqdn, value) "
	    "WHERE EXISTS (SELECT 1 FROM records r WHERE r.account_id = e.a AND r.fqdn = e.fqdn) "
	    "AND NOT EXISTS (SELECT 1 FROM records r WHERE r.account_id = e.a AND r.fqdn = e.fqdn AND r.value = e.value) "
	    "ORDER BY 1", 3, p, err);
	if (res == NULL)
		goto out;
	*differ = PQntuples(res);
	if (*differ > 0 && example_len > 0) {
		char q[256 * 4 + 8];
		const char *w = db_get(res, 0, "written");
		cf_quote(q, sizeof(q), w, strlen(w), 256);
		snprintf(example, example_len, "%s: run wrote \"%s\"", db_get(res, 0, "fqdn"), q);
	}
	rc = 0;
out:
	free(value);
	PQclear(res);
	pgarray_free(&accts);
	pgarray_free(&fqdns);
	pgarray_free(&values);
	return rc;
}

void
records_free(struct records_ca *cas, size_t nca, struct records_entry *entries, size_t n)
{
	for (size_t i = 0; i < nca; i++)
		records_ca_clear(&cas[i]);
	free(cas);
	for (size_t i = 0; i < n; i++) {
		free(entries[i].base);
		free(entries[i].cert_ids);
	}
	free(entries);
}
