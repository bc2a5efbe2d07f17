/*
 * powerdns.c - the PowerDNS Authoritative provider: TXT records through its HTTP API, one zone
 * read (GET) and at most one change (PATCH) per call.
 *
 * Settings: "api_url" (http://127.0.0.1:8081, required), "server_id" ["localhost"], the key as
 * "api_key", "api_key_file" or "api_key_env" (sent as X-API-Key, never printed), "ttl" (seconds,
 * for the RRsets this provider creates) [300]. PowerDNS serves its API as plain http by default:
 * certfleet takes an http:// api_url only on loopback and only when the operator allowed it
 * (--allow-http-loopback), since the key travels in the request.
 *
 * A call reads the TXT RRsets of its names (GET /api/v1/servers/{server}/zones/{zone}, filtered
 * with rrset_name when the call has one name, the whole zone otherwise), then sends one PATCH
 * that REPLACEs each RRset that must change with its values as they were plus (ensure) or minus
 * (remove) ours, or DELETEs an RRset that would be left empty. Values that certfleet did not
 * write are kept as PowerDNS returned them; an existing RRset keeps its TTL. Nothing is sent when
 * nothing has to change, so ensuring twice costs one GET.
 *
 * Known limit: this is read-modify-write and PowerDNS has no conditional PATCH (no ETag or
 * If-Match on RRsets), so a value that another client adds to the same name between our GET and
 * our PATCH is lost (and a value we add can be lost to another client's PATCH the same way).
 * certfleet notices its own loss when it confirms the record at the authoritative servers (the
 * record is then reported not visible and published again on a later try); the other client has
 * to check its own writes. Two certfleet processes writing the same name are exposed alike.
 */
#include "powerdns.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "provider.h"
#include "txtdata.h"

#define PDNS_DEFAULT_TTL 300
#define PDNS_ERROR_MAX 200 /* octets of PowerDNS's error text quoted in a message */

/* An account's parsed settings. */
struct pdns_state {
	char *base;             /* "<api_url>/api/v1/servers/<server_id>" */
	char *server_id;
	char *key_header;       /* "X-API-Key: <key>"; http.h never logs header values */
	json_int_t ttl;         /* for RRsets this provider creates */
};

/* One call's own state (call->pdata). */
struct pdns_call {
	char *zone_url;         /* base + "/zones/<zone id>" */
};

/* ---- settings ---- */

static void
pdns_state_free(struct pdns_state *st)
{
	if (st == NULL)
		return;
	cf_secret_free(st->key_header);
	free(st->base);
	free(st->server_id);
	free(st);
}

/* True for the octets that need no escape in a zone id or a server id: [A-Za-z0-9._-]. */
static bool
pdns_plain_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '.' || c == '_' || c == '-';
}

/* True when s is a plain, non-empty identifier (a PowerDNS server id). */
static bool
pdns_plain(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!pdns_plain_char(*s))
			return false;
	return true;
}

static int
pdns_open(struct provider_account *acct, cf_err *err)
{
	struct pdns_state *st = NULL;
	const char *url = provider_setting(acct, "api_url");
	const char *sid = provider_setting(acct, "server_id");
	json_t *ttl = json_object_get(acct->settings, "ttl");
	char *key = NULL;
	size_t n;
	int rc = -1;

	if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
		cf_errf(err, "provider %s: \"api_url\" must be the PowerDNS API's http:// or "
		    "https:// URL (e.g. http://127.0.0.1:8081)", acct->name);
		goto out;
	}
	if (provider_url_check(acct, "api_url", url, err) != 0)
		goto out;
	if (sid == NULL && json_object_get(acct->settings, "server_id") != NULL) {
		cf_errf(err, "provider %s: \"server_id\" must be a string", acct->name);
		goto out;
	}
	if (sid == NULL)
		sid = "localhost";
	if (!pdns_plain(sid)) {
		cf_errf(err, "provider %s: \"server_id\" \"%.64s\" is not a PowerDNS server id "
		    "(letters, digits, '.', '_', '-')", acct->name, sid);
		goto out;
	}
	if (ttl != NULL && (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
	    json_integer_value(ttl) > 2147483647)) {
		cf_errf(err, "provider %s: \"ttl\" must be a number of seconds from 1 to 2147483647",
		    acct->name);
		goto out;
	}
	key = provider_secret(acct, "api_key", true, err);
	if (key == NULL)
		goto out;
	if (key[0] == '\0' || strpbrk(key, "\r\n") != NULL) {
		cf_errf(err, "provider %s: \"api_key\" is empty or holds a line break", acct->name);
		goto out;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		goto oom;
	st->ttl = ttl != NULL ? json_integer_value(ttl) : PDNS_DEFAULT_TTL;
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	/* accept the URL with or without the API's own path */
	if (n >= 7 && strncmp(url + n - 7, "/api/v1", 7) == 0)
		n -= 7;
	if (asprintf(&st->base, "%.*s/api/v1/servers/%s", (int)n, url, sid) < 0) {
		st->base = NULL;
		goto oom;
	}
	if (asprintf(&st->key_header, "X-API-Key: %s", key) < 0) {
		st->key_header = NULL;
		goto oom;
	}
	st->server_id = strdup(sid);
	if (st->server_id == NULL)
		goto oom;
	acct->state = st;
	st = NULL;
	rc = 0;
	goto out;
oom:
	cf_errf(err, "provider %s: out of memory", acct->name);
out:
	cf_secret_free(key);
	pdns_state_free(st);
	return rc;
}

static void
pdns_close(struct provider_account *acct)
{
	pdns_state_free(acct->state);
	acct->state = NULL;
}

/* ---- the call ---- */

/*
 * The URL of zone (lower case, no trailing dot): its id is the canonical name with the trailing
 * dot, octets outside [A-Za-z0-9._-] written =XX as PowerDNS does. NULL when out of memory.
 */
static char *
pdns_zone_url(const struct pdns_state *st, const char *zone)
{
	cf_buf b = { 0 };
	const char *p;
	char *out = NULL;

	if (cf_buf_printf(&b, "%s/zones/", st->base) != 0)
		goto out;
	for (p = zone; *p; p++) {
		if ((pdns_plain_char(*p) ? cf_buf_append(&b, p, 1) :
		    cf_buf_printf(&b, "=%02X", (unsigned char)*p)) != 0)
			goto out;
	}
	if (cf_buf_append(&b, ".", 1) != 0)
		goto out;
	out = b.data;
	b.data = NULL;
out:
	cf_buf_free(&b);
	return out;
}

/* Appends s to b, %-encoding everything but unreserved characters (for a query parameter). */
static int
pdns_query_escape(cf_buf *b, const char *s)
{
	for (; *s; s++) {
		if ((pdns_plain_char(*s) || *s == '~' ? cf_buf_append(b, s, 1) :
		    cf_buf_printf(b, "%%%02X", (unsigned char)*s)) != 0)
			return -1;
	}
	return 0;
}

/* Frees the call's own state and ends it. */
static void
pdns_finish(struct provider_call *call)
{
	struct pdns_call *pc = call->pdata;

	if (pc != NULL) {
		free(pc->zone_url);
		free(pc);
		call->pdata = NULL;
	}
	provider_call_done(call);
}

/* A request to the API with the key; method NULL means GET (or POST when body is given). */
static struct http_req *
pdns_req_new(struct provider_call *call, const char *url, const char *body, const char *method, cf_err *err)
{
	const struct pdns_state *st = call->acct->state;
	struct http_req *req = http_req_new(&call->acct->http, url, body, "application/json", false, err);

	if (req == NULL)
		return NULL;
	if (http_req_header(req, st->key_header) != 0 ||
	    http_req_header(req, "Accept: application/json") != 0 ||
	    (method != NULL && http_req_method(req, method) != 0)) {
		cf_errf(err, "http_req_header %s: out of memory", url);
		http_req_free(req);
		return NULL;
	}
	return req;
}

/* PowerDNS's explanation of a failed request: its JSON "error", else the start of the body. */
static void
pdns_error_text(const struct http_req *req, char *dst, size_t dstlen)
{
	json_t *root = NULL;
	const char *s = NULL;

	if (req->body.data != NULL && req->body.len > 0) {
		root = json_loadb(req->body.data, req->body.len, 0, NULL);
		s = json_string_value(json_object_get(root, "error"));
		if (s == NULL)
			s = req->body.data;
	}
	if (s == NULL)
		s = "";
	cf_quote(dst, dstlen, s, strlen(s), PDNS_ERROR_MAX);
	json_decref(root);
}

/*
 * True when req succeeded (2xx); otherwise records the failure on call: retryable for transport
 * errors, 429 and 5xx; not for a rejected key (401, 403), a missing zone (404), a refused change
 * (422) or any other answer. what is the request, e.g. "GET zone".
 */
static bool
pdns_http_ok(struct provider_call *call, const struct http_req *req, const char *what)
{
	const struct pdns_state *st = call->acct->state;
	const char *acct = call->acct->name;
	char why[CURL_ERROR_SIZE + 64], text[4 * PDNS_ERROR_MAX + 8];
	long status = req->status;
	int64_t after = req->retry_after_s >= 0 ? (int64_t)req->retry_after_s * 1000 : -1;

	if (req->result != CURLE_OK || status == 0) {
		provider_call_fail(call, true, -1, "powerdns account %s: %s %s at %s: %s", acct, what,
		    call->zone, st->base, http_req_error(req, why, sizeof(why)));
		return false;
	}
	if (status >= 200 && status < 300)
		return true;
	pdns_error_text(req, text, sizeof(text));
	if (status == 401 || status == 403)
		provider_call_fail(call, false, -1, "powerdns account %s: %s %s: the API key was rejected "
		    "(HTTP %ld); check the account's api_key", acct, what, call->zone, status);
	else if (status == 404)
		provider_call_fail(call, false, -1, "powerdns account %s: %s %s: no zone %s. on PowerDNS "
		    "server \"%s\" at %s (HTTP 404)", acct, what, call->zone, call->zone, st->server_id,
		    st->base);
	else if (status == 422)
		provider_call_fail(call, false, -1, "powerdns account %s: %s %s: PowerDNS refused it "
		    "(HTTP 422): \"%s\"", acct, what, call->zone, text);
	else if (status == 429 || status >= 500)
		provider_call_fail(call, true, after, "powerdns account %s: %s %s: HTTP %ld: \"%s\"", acct,
		    what, call->zone, status, text);
	else
		provider_call_fail(call, false, -1, "powerdns account %s: %s %s: HTTP %ld: \"%s\"", acct,
		    what, call->zone, status, text);
	return false;
}

/* The TXT RRset called fqdn (no trailing dot) among the zone's rrsets, or NULL. */
static const json_t *
pdns_find_rrset(const json_t *rrsets, const char *fqdn)
{
	size_t i, n = strlen(fqdn);
	const json_t *rr;

	for (i = 0; i < json_array_size(rrsets); i++) {
		rr = json_array_get(rrsets, i);
		const char *name = json_string_value(json_object_get(rr, "name"));
		const char *type = json_string_value(json_object_get(rr, "type"));
		size_t nlen = name ? strlen(name) : 0;

		if (name == NULL || type == NULL || strcmp(type, "TXT") != 0)
			continue;
		if (nlen > 0 && name[nlen - 1] == '.')
			nlen--;
		if (nlen == n && strncasecmp(name, fqdn, n) == 0)
			return rr;
	}
	return NULL;
}

/* True when content (PowerDNS's TXT form) holds exactly value; malformed content holds nothing. */
static bool
pdns_content_is(const char *content, const char *value)
{
	return txtdata_equal(content, strlen(content), TXTDATA_RFC1035, value);
}

/* True when one of recs at fqdn has the value that content holds. */
static bool
pdns_is_ours(const struct provider_record *recs, size_t nrec, const char *fqdn, const char *content)
{
	size_t i;

	for (i = 0; i < nrec; i++)
		if (strcmp(recs[i].fqdn, fqdn) == 0 && pdns_content_is(content, recs[i].value))
			return true;
	return false;
}

/* Appends {"content": content, "disabled": disabled} to records; -1 when out of memory. */
static int
pdns_add_record(json_t *records, const char *content, bool disabled)
{
	json_t *r = json_pack("{s:s, s:b}", "content", content, "disabled", disabled);

	return r != NULL && json_array_append_new(records, r) == 0 ? 0 : -1;
}

/* Appends to changes what the TXT RRset at fqdn needs (see powerdns_plan); -1 with err set. */
static int
pdns_plan_name(enum provider_action action, const struct provider_record *recs, size_t nrec,
    const char *fqdn, const json_t *rrsets, json_int_t ttl, json_t *changes, cf_err *err)
{
	const json_t *have = pdns_find_rrset(rrsets, fqdn), *r;
	const json_t *old = json_object_get(have, "records");
	json_t *keep = json_array(), *change = NULL;
	cf_buf quoted = { 0 };
	char *name = NULL;
	bool changed = false;
	size_t i, j;
	int rc = -1;

	if (keep == NULL || asprintf(&name, "%s.", fqdn) < 0) {
		name = NULL;
		goto oom;
	}
	/* an RRset that exists keeps its TTL: it is not only ours */
	if (json_is_integer(json_object_get(have, "ttl")))
		ttl = json_integer_value(json_object_get(have, "ttl"));

	/* the values there now: kept as they are, except ours (remove) or ours disabled (ensure) */
	for (i = 0; i < json_array_size(old); i++) {
		r = json_array_get(old, i);
		const char *content = json_string_value(json_object_get(r, "content"));
		bool disabled = json_is_true(json_object_get(r, "disabled"));
		bool ours;

		if (content == NULL) {
			cf_errf(err, "a TXT record at %s has no \"content\" in PowerDNS's answer", fqdn);
			goto out;
		}
		ours = pdns_is_ours(recs, nrec, fqdn, content);
		if (ours && action == PROVIDER_REMOVE) {
			changed = true;
			continue;
		}
		if (ours && disabled) {
			disabled = false;
			changed = true;
		}
		if (pdns_add_record(keep, content, disabled) != 0)
			goto oom;
	}

	/* ensure: each of our values that none of those holds */
	for (i = 0; action == PROVIDER_ENSURE && i < nrec; i++) {
		bool present = false;

		if (strcmp(recs[i].fqdn, fqdn) != 0)
			continue;
		for (j = 0; j < json_array_size(keep) && !present; j++)
			present = pdns_content_is(json_string_value(json_object_get(json_array_get(keep, j),
			    "content")), recs[i].value);
		if (present)
			continue;
		cf_buf_reset(&quoted);
		if (txtdata_quote(&quoted, recs[i].value, err) != 0)
			goto out;
		if (pdns_add_record(keep, quoted.data, false) != 0)
			goto oom;
		changed = true;
	}

	if (changed) {
		if (json_array_size(keep) == 0)
			change = json_pack("{s:s, s:s, s:s}", "name", name, "type", "TXT", "changetype", "DELETE");
		else
			change = json_pack("{s:s, s:s, s:I, s:s, s:O}", "name", name, "type", "TXT", "ttl", ttl,
			    "changetype", "REPLACE", "records", keep);
		if (change == NULL || json_array_append_new(changes, change) != 0)
			goto oom;
	}
	rc = 0;
	goto out;
oom:
	cf_errf(err, "planning the change of %s: out of memory", fqdn);
out:
	cf_buf_free(&quoted);
	free(name);
	json_decref(keep);
	return rc;
}

json_t *
powerdns_plan(enum provider_action action, const struct provider_record *recs, size_t nrec,
    const json_t *rrsets, json_int_t ttl, cf_err *err)
{
	json_t *changes = json_array(), *out = NULL;
	size_t i, j;

	if (changes == NULL) {
		cf_errf(err, "powerdns_plan: out of memory");
		goto out;
	}
	for (i = 0; i < nrec; i++) {
		/* each name once */
		for (j = 0; j < i && strcmp(recs[j].fqdn, recs[i].fqdn) != 0; j++)
			;
		if (j == i && pdns_plan_name(action, recs, nrec, recs[i].fqdn, rrsets, ttl, changes, err) != 0)
			goto out;
	}
	out = changes;
	changes = NULL;
out:
	json_decref(changes);
	return out;
}

static void
pdns_patched(struct provider_call *call, struct http_req *req)
{
	(void)pdns_http_ok(call, req, "PATCH zone");
	http_req_free(req);
	pdns_finish(call);
}

/* The zone's RRsets are read: work out the changes and send them, or end the call. */
static void
pdns_got(struct provider_call *call, struct http_req *req)
{
	const struct pdns_state *st = call->acct->state;
	struct pdns_call *pc = call->pdata;
	const char *acct = call->acct->name;
	json_t *root = NULL, *rrsets, *changes = NULL, *body = NULL;
	struct http_req *patch = NULL;
	char *text = NULL;
	cf_err e = { "" };
	bool sent = false;

	if (!pdns_http_ok(call, req, "GET zone"))
		goto out;
	root = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
	rrsets = json_object_get(root, "rrsets");
	if (!json_is_array(rrsets)) {
		provider_call_fail(call, false, -1, "powerdns account %s: GET zone %s: the answer is not a "
		    "PowerDNS zone (no \"rrsets\" array); check api_url", acct, call->zone);
		goto out;
	}
	changes = powerdns_plan(call->action, call->recs, call->nrec, rrsets, st->ttl, &e);
	if (changes == NULL) {
		provider_call_fail(call, false, -1, "powerdns account %s: zone %s: %s", acct, call->zone, e.msg);
		goto out;
	}
	if (json_array_size(changes) == 0)
		goto out; /* every value is already as it should be */
	body = json_pack("{s:O}", "rrsets", changes);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	patch = text ? pdns_req_new(call, pc->zone_url, text, "PATCH", &e) : NULL;
	if (patch == NULL) {
		provider_call_fail(call, true, -1, "powerdns account %s: PATCH zone %s: %s", acct, call->zone,
		    e.msg[0] ? e.msg : "out of memory");
		goto out;
	}
	provider_http(call, patch, pdns_patched);
	sent = true;
out:
	http_req_free(req);
	free(text);
	json_decref(body);
	json_decref(changes);
	json_decref(root);
	if (!sent)
		pdns_finish(call);
}

static void
pdns_start(struct provider_call *call)
{
	const struct pdns_state *st = call->acct->state;
	struct pdns_call *pc = NULL;
	struct http_req *req = NULL;
	cf_buf url = { 0 };
	cf_err e = { "" };
	size_t i;
	bool one_name = true, sent = false;

	if (call->zone == NULL || call->zone[0] == '\0') {
		provider_call_fail(call, false, -1, "powerdns account %s: no zone for %s", call->acct->name,
		    call->nrec > 0 ? call->recs[0].fqdn : "(no record)");
		goto out;
	}
	if (call->nrec == 0)
		goto out;
	pc = calloc(1, sizeof(*pc));
	if (pc == NULL || (pc->zone_url = pdns_zone_url(st, call->zone)) == NULL) {
		free(pc);
		provider_call_fail(call, true, -1, "powerdns account %s: zone %s: out of memory",
		    call->acct->name, call->zone);
		goto out;
	}
	call->pdata = pc;
	for (i = 1; i < call->nrec; i++)
		if (strcmp(call->recs[i].fqdn, call->recs[0].fqdn) != 0)
			one_name = false;
	/* one name: ask for its TXT RRset alone (PowerDNS 4.7.3 filters with these parameters; a
	 * server that ignores them sends the whole zone, which is read the same way) */
	if (cf_buf_printf(&url, "%s", pc->zone_url) != 0 ||
	    (one_name && (cf_buf_printf(&url, "?rrset_name=") != 0 ||
	    pdns_query_escape(&url, call->recs[0].fqdn) != 0 ||
	    cf_buf_printf(&url, ".&rrset_type=TXT") != 0))) {
		provider_call_fail(call, true, -1, "powerdns account %s: zone %s: out of memory",
		    call->acct->name, call->zone);
		goto out;
	}
	req = pdns_req_new(call, url.data, NULL, NULL, &e);
	if (req == NULL) {
		provider_call_fail(call, true, -1, "powerdns account %s: GET zone %s: %s", call->acct->name,
		    call->zone, e.msg);
		goto out;
	}
	provider_http(call, req, pdns_got);
	sent = true;
out:
	cf_buf_free(&url);
	if (!sent)
		pdns_finish(call);
}

static const char *const powerdns_settings[] = { "api_url", "server_id", "api_key", "ttl", NULL };

const struct provider_ops provider_powerdns = {
	.type = "powerdns",
	.summary = "PowerDNS Authoritative HTTP API (api_url, server_id, api_key, ttl)",
	.batch_max = 1000,
	.default_rate = NULL,
	.settings = powerdns_settings,
	.open = pdns_open,
	.close = pdns_close,
	.start = pdns_start,
};
