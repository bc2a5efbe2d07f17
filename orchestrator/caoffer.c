/*
 * caoffer.c - the CA's certificate profiles (from its directory) and alternate chains (from the
 * account's downloads, accounts.offers_alternates), checked at enqueue so that a wish the CA
 * cannot grant is refused before anything is stored.
 */
#include "caoffer.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "db.h"

int
caoffer_profile_syntax(const char *profile, cf_err *err)
{
	size_t n = strlen(profile);

	if (n < 1 || n > 64 || strspn(profile, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n) {
		cf_errf(err, "profile \"%.80s\": a profile name is 1 to 64 letters, digits, '.', '_' or '-'", profile);
		return -1;
	}
	return 0;
}

int
caoffer_chain_syntax(const char *chain, cf_err *err)
{
	size_t n = strlen(chain);

	for (const unsigned char *p = (const unsigned char *)chain; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			cf_errf(err, "preferred chain: an issuer Common Name holds no control characters");
			return -1;
		}
	}
	if (n < 1 || n > 256) {
		cf_errf(err, "preferred chain \"%.80s\": an issuer Common Name is 1 to 256 octets", chain);
		return -1;
	}
	return 0;
}

int
caoffer_check_profile(const struct http_settings *hs, const char *directory_url, const char *profile,
    cf_err *err)
{
	struct http_req *req = http_req_new(hs, directory_url, NULL, NULL, false, err);
	json_t *doc = NULL, *profiles;
	cf_buf offered = { 0 };
	const char *name;
	json_t *v;
	int rc = -1;

	if (req == NULL)
		return -1;
	if (http_req_perform(req, err) != 0)
		goto out;
	if (req->status != 200) {
		cf_errf(err, "ACME directory %s: HTTP %ld", directory_url, req->status);
		goto out;
	}
	doc = req->body.data ? json_loadb(req->body.data, req->body.len, 0, NULL) : NULL;
	if (!json_is_object(doc)) {
		cf_errf(err, "ACME directory %s: the answer is not a JSON object", directory_url);
		goto out;
	}
	profiles = json_object_get(json_object_get(doc, "meta"), "profiles");
	if (json_object_get(profiles, profile) != NULL) {
		rc = 0;
		goto out;
	}
	rc = 1;
	if (!json_is_object(profiles) || json_object_size(profiles) == 0) {
		cf_errf(err, "profile \"%s\": the CA of %s offers no certificate profiles", profile, directory_url);
		goto out;
	}
	json_object_foreach(profiles, name, v) {
		(void)v;
		if (cf_buf_printf(&offered, "%s%s", offered.len ? ", " : "", name) != 0)
			break;
	}
	cf_errf(err, "profile \"%s\": the CA of %s does not offer it (it offers: %s)", profile, directory_url,
	    offered.data ? offered.data : "?");
out:
	cf_buf_free(&offered);
	json_decref(doc);
	http_req_free(req);
	return rc;
}

int
caoffer_check_alternates(PGconn *c, int64_t account_id, cf_err *err)
{
	char id[24];
	const char *p[] = { id };
	PGresult *res;
	const char *v;
	int rc = 0;

	snprintf(id, sizeof(id), "%" PRId64, account_id);
	res = db_exec(c, "reading whether the CA offers alternate chains",
	    "SELECT offers_alternates FROM accounts WHERE id = $1", 1, p, err);
	if (res == NULL)
		return -1;
	v = PQntuples(res) == 1 ? db_get(res, 0, "offers_alternates") : NULL;
	if (v != NULL && strcmp(v, "f") == 0) {
		cf_errf(err, "preferred chain: the CA of account %s offered no alternate chains on its last "
		    "certificate download, so none could be preferred", id);
		rc = 1;
	}
	PQclear(res);
	return rc;
}
