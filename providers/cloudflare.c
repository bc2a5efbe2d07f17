/*
 * cloudflare.c - the Cloudflare DNS provider (API v4, Bearer token): per call, the zone's TXT
 * records at the call's names are listed, then one request to the batch endpoint creates the
 * values that are missing (ensure) or deletes exactly ours (remove). Records holding any other
 * value are never modified.
 *
 * Settings: "api_url" [https://api.cloudflare.com/client/v4], "api_token" (a secret: also
 * "api_token_file" or "api_token_env"), "zone_ids" {"example.com": "<32 hex digits>"} (else
 * looked up with GET /zones?name=, once per zone and account), "ttl" [300; 1 = automatic].
 */
#include "cloudflare.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "txtdata.h"
#include "zoneids.h"

#define CFL_DEFAULT_URL "https://api.cloudflare.com/client/v4"
#define CFL_DEFAULT_TTL 300
#define CFL_ID_LEN 32          /* Cloudflare ids: 32 hex digits */
#define CFL_BATCH_MAX 200      /* operations per batch request: the Free plan's limit (Pro and up:
                                * 3,500), so one account setting works on every plan */
#define CFL_PER_PAGE 5000      /* records per list page (the API allows up to 5,000,000) */
#define CFL_BYNAME_MAX 3       /* up to this many names, one list request per name; more, one
                                * listing of the zone's TXT records (unless that takes more pages
                                * than there are names) */
#define CFL_MAX_PAGES 1000     /* a listing longer than this is refused rather than followed */
#define CFL_COMMENT "certfleet" /* on the records certfleet creates, for people reading the zone */

/* A zone id, configured or looked up. */
/* An account's parsed settings (acct->state). */
struct cfl_state {
	char *api_url;              /* without a trailing '/' */
	char *auth;                 /* "Authorization: Bearer <token>": secret, wiped on close */
	long ttl;
	struct zone_ids zones;      /* zone name (lower case, no trailing dot) -> id */
};

/* One call's progress (call->pdata). */
struct cfl_work {
	struct provider_call *call;
	struct cfl_state *st;
	char *zone_id;
	const char **names;         /* the call's distinct names (into call->recs) */
	size_t nnames;
	bool by_name;               /* listing one name at a time, else the zone's TXT records */
	size_t name_i;              /* the name being listed (by_name) */
	long page;                  /* the page being listed, from 1 */
	struct cloudflare_existing *ex;
	size_t nex, capex;
	json_t *ops;                /* the batch's operations (cloudflare_plan) */
	size_t op_i;                /* first operation of the next batch request */
};

/* ---- pure parts (cloudflare.h) ---- */

/* Whether Cloudflare error code means the credentials were refused. */
static bool
cfl_auth_code(json_int_t code)
{
	/* 6003/6111 bad Authorization header, 9103 unknown key, 9106 authentication failed,
	 * 9109 invalid access token, 10000 authentication error, 10001 token expired or revoked */
	static const json_int_t codes[] = { 6003, 6111, 9103, 9106, 9109, 10000, 10001 };

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i] == code)
			return true;
	return false;
}

/* Whether the code says the zone changed under us (a concurrent writer): worth another try. */
static bool
cfl_race_code(json_int_t code)
{
	/* 81044 record does not exist, 81057 record already exists, 81058 identical record exists */
	return code == 81044 || code == 81057 || code == 81058;
}

enum cloudflare_verdict
cloudflare_judge(long status, const json_t *body, char *why, size_t whylen)
{
	const json_t *errors = json_is_object(body) ? json_object_get(body, "errors") : NULL;
	bool success = json_is_object(body) && json_is_true(json_object_get(body, "success"));
	bool auth = false, race = false;
	size_t used, i;
	int n;

	n = snprintf(why, whylen, "HTTP %ld", status);
	used = n > 0 && (size_t)n < whylen ? (size_t)n : whylen > 0 ? whylen - 1 : 0;
	if (status >= 200 && status < 300 && !json_is_object(body))
		snprintf(why + used, whylen - used, " with a body that is not a JSON object");
	for (i = 0; json_is_array(errors) && i < json_array_size(errors); i++) {
		const json_t *e = json_array_get(errors, i);
		json_int_t code = json_integer_value(json_object_get(e, "code"));
		const char *msg = json_string_value(json_object_get(e, "message"));
		char q[4 * 120 + 8];

		auth = auth || cfl_auth_code(code);
		race = race || cfl_race_code(code);
		if (i >= 3 || used + 1 >= whylen)
			continue;
		cf_quote(q, sizeof(q), msg ? msg : "", msg ? strlen(msg) : 0, 120);
		n = snprintf(why + used, whylen - used, ", code %lld \"%s\"", (long long)code, q);
		used = n > 0 && used + (size_t)n < whylen ? used + (size_t)n : whylen - 1;
	}
	if (status >= 200 && status < 300 && success)
		return CLOUDFLARE_OK;
	if (status == 401 || status == 403 || auth)
		return CLOUDFLARE_CREDENTIALS;
	if (status == 0 || status == 429 || status >= 500 || race)
		return CLOUDFLARE_RETRYABLE;
	return CLOUDFLARE_FAILED;
}

/* Whether some existing record at name holds value. */
static bool
cfl_exists(const struct cloudflare_existing *ex, size_t nex, const char *name, const char *value)
{
	for (size_t i = 0; i < nex; i++)
		if (strcasecmp(ex[i].name, name) == 0 &&
		    txtdata_equal(ex[i].content, strlen(ex[i].content), TXTDATA_RFC1035, value))
			return true;
	return false;
}

json_t *
cloudflare_plan(enum provider_action action, const struct provider_record *recs, size_t nrec,
    const struct cloudflare_existing *ex, size_t nex, long ttl, cf_err *err)
{
	json_t *ops = json_array(), *op = NULL;
	cf_buf content = { 0 };
	size_t i, j;

	if (ops == NULL)
		goto oom;
	if (action == PROVIDER_ENSURE) {
		for (i = 0; i < nrec; i++) {
			bool dup = false;

			for (j = 0; j < i && !dup; j++)
				dup = strcasecmp(recs[j].fqdn, recs[i].fqdn) == 0 &&
				    strcmp(recs[j].value, recs[i].value) == 0;
			if (dup || cfl_exists(ex, nex, recs[i].fqdn, recs[i].value))
				continue;
			cf_buf_reset(&content);
			if (txtdata_quote(&content, recs[i].value, err) != 0)
				goto fail;
			op = json_pack("{s:s, s:s, s:s, s:I, s:s}", "type", "TXT", "name", recs[i].fqdn,
			    "content", content.data, "ttl", (json_int_t)ttl, "comment", CFL_COMMENT);
			if (op == NULL || json_array_append_new(ops, op) != 0)
				goto oom;
		}
	} else {
		for (i = 0; i < nex; i++) {
			for (j = 0; j < nrec; j++) {
				if (strcasecmp(ex[i].name, recs[j].fqdn) != 0 ||
				    !txtdata_equal(ex[i].content, strlen(ex[i].content), TXTDATA_RFC1035,
				    recs[j].value))
					continue;
				op = json_pack("{s:s}", "id", ex[i].id);
				if (op == NULL || json_array_append_new(ops, op) != 0)
					goto oom;
				break;
			}
		}
	}
	cf_buf_free(&content);
	return ops;
oom:
	cf_errf(err, "cloudflare: out of memory for the batch");
fail:
	cf_buf_free(&content);
	json_decref(ops);
	return NULL;
}

/* ---- settings ---- */

static bool
cfl_is_id(const char *s)
{
	if (s == NULL || strlen(s) != CFL_ID_LEN)
		return false;
	for (size_t i = 0; i < CFL_ID_LEN; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}


/* Adds (name, id) to the account's zones, name normalized; -1 when out of memory. */
static int
cfl_zone_add(struct cfl_state *st, const char *name, const char *id)
{
	char *k = provider_zone_name(name);
	int rc = k ? zone_ids_add(&st->zones, k, id) : -1;

	free(k);
	return rc;
}

static void
cfl_state_free(struct cfl_state *st)
{
	if (st == NULL)
		return;
	free(st->api_url);
	cf_secret_free(st->auth);
	zone_ids_clear(&st->zones);
	free(st);
}

static int
cfl_open(struct provider_account *acct, cf_err *err)
{
	struct cfl_state *st = calloc(1, sizeof(*st));
	const char *url = provider_setting(acct, "api_url");
	const json_t *ttl = json_object_get(acct->settings, "ttl");
	const json_t *ids = json_object_get(acct->settings, "zone_ids");
	char *token = NULL;
	const char *key;
	json_t *val;
	size_t n;
	int rc = -1;

	if (st == NULL || zone_ids_init(&st->zones) != 0) {
		cf_errf(err, "provider account \"%s\" (cloudflare): out of memory", acct->name);
		free(st);
		return -1;
	}
	if (url == NULL)
		url = CFL_DEFAULT_URL;
	if ((strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) ||
	    strpbrk(url, " \t\r\n?#") != NULL) {
		cf_errf(err, "provider account \"%s\" (cloudflare): \"api_url\" must be an http(s) URL "
		    "without spaces, query or fragment", acct->name);
		goto out;
	}
	if (provider_url_check(acct, "api_url", url, err) != 0)
		goto out;
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	if ((st->api_url = strndup(url, n)) == NULL)
		goto oom;
	st->ttl = CFL_DEFAULT_TTL;
	if (ttl != NULL) {
		json_int_t t = json_integer_value(ttl);

		if (!json_is_integer(ttl) || !(t == 1 || (t >= 30 && t <= 86400))) {
			cf_errf(err, "provider account \"%s\" (cloudflare): \"ttl\" must be 1 (automatic) "
			    "or 30 to 86400 seconds", acct->name);
			goto out;
		}
		st->ttl = (long)t;
	}
	if (ids != NULL && !json_is_object(ids)) {
		cf_errf(err, "provider account \"%s\" (cloudflare): \"zone_ids\" must be an object "
		    "{\"zone\": \"id\"}", acct->name);
		goto out;
	}
	json_object_foreach((json_t *)ids, key, val) {
		if (!cfl_is_id(json_string_value(val))) {
			char q[4 * 64 + 8];

			cf_quote(q, sizeof(q), key, strlen(key), 64);
			cf_errf(err, "provider account \"%s\" (cloudflare): \"zone_ids\" of \"%s\" must be "
			    "a zone id of %d hex digits", acct->name, q, CFL_ID_LEN);
			goto out;
		}
		if (cfl_zone_add(st, key, json_string_value(val)) != 0)
			goto oom;
	}
	if ((token = provider_secret(acct, "api_token", true, err)) == NULL)
		goto out;
	for (const char *p = token; *p; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			cf_errf(err, "provider account \"%s\" (cloudflare): the api_token has a space, "
			    "control or non-ASCII character", acct->name);
			goto out;
		}
	}
	if (token[0] == '\0') {
		cf_errf(err, "provider account \"%s\" (cloudflare): the api_token is empty", acct->name);
		goto out;
	}
	if (asprintf(&st->auth, "Authorization: Bearer %s", token) < 0) {
		st->auth = NULL;
		goto oom;
	}
	acct->state = st;
	st = NULL;
	rc = 0;
	goto out;
oom:
	cf_errf(err, "provider account \"%s\" (cloudflare): out of memory", acct->name);
out:
	cf_secret_free(token);
	cfl_state_free(st);
	return rc;
}

static void
cfl_close(struct provider_account *acct)
{
	struct cfl_state *st = acct->state;

	if (st == NULL)
		return;
	cfl_state_free(st);
	acct->state = NULL;
}

/* ---- one call ---- */

static void
cfl_existing_clear(struct cfl_work *w)
{
	for (size_t i = 0; i < w->nex; i++) {
		free(w->ex[i].id);
		free(w->ex[i].name);
		free(w->ex[i].content);
	}
	w->nex = 0;
}

static void
cfl_work_free(struct cfl_work *w)
{
	if (w == NULL)
		return;
	cfl_existing_clear(w);
	free(w->ex);
	free(w->names);
	free(w->zone_id);
	json_decref(w->ops);
	free(w);
}

/* Ends the call: w is freed, and so may be the call. */
static void
cfl_finish(struct cfl_work *w)
{
	struct provider_call *call = w->call;

	call->pdata = NULL;
	cfl_work_free(w);
	provider_call_done(call);
}

/* Fails the call with "cloudflare account "A", zone Z: <message>" and ends it. */
static void __attribute__((format(printf, 4, 5)))
cfl_fail(struct cfl_work *w, bool retryable, int64_t retry_after_ms, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	provider_call_fail(w->call, retryable, retry_after_ms, "cloudflare account \"%s\", zone %s: %s",
	    w->call->acct->name, w->call->zone, msg);
	cfl_finish(w);
}

/* Appends s to b percent-encoded for a query value (RFC 3986 unreserved kept). */
static int
cfl_urlencode(cf_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			if (cf_buf_append(b, s, 1) != 0)
				return -1;
		} else if (cf_buf_append(b, e, 3) != 0) {
			return -1;
		}
	}
	return 0;
}

/* Sends method path (below api_url) with body (JSON, may be NULL) and calls done with the answer. */
static void
cfl_send(struct cfl_work *w, const char *method, const char *path, const char *body,
    void (*done)(struct provider_call *, struct http_req *))
{
	struct http_req *req = NULL;
	char *url = NULL;
	cf_err err = { { 0 } };

	if (asprintf(&url, "%s%s", w->st->api_url, path) < 0) {
		url = NULL;
		goto oom;
	}
	if ((req = http_req_new(&w->call->acct->http, url, body, "application/json", false, &err)) ==
	    NULL)
		goto fail;
	if (http_req_header(req, w->st->auth) != 0 ||
	    http_req_header(req, "Accept: application/json") != 0 ||
	    (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 &&
	    http_req_method(req, method) != 0))
		goto oom;
	free(url);
	provider_http(w->call, req, done);
	return;
oom:
	cf_errf(&err, "out of memory");
fail:
	http_req_free(req);
	free(url);
	cfl_fail(w, true, -1, "%s %s: %s", method, path, err.msg);
}

/*
 * Judges req's answer to the step what; frees req. Returns the parsed body on success; else
 * fails and ends the call (w is gone) and returns NULL.
 */
static json_t *
cfl_answer(struct cfl_work *w, struct http_req *req, const char *what)
{
	char why[600], transport[CURL_ERROR_SIZE + 32];
	json_t *root = NULL;
	enum cloudflare_verdict v;
	int64_t retry_after = req->retry_after_s >= 0 ? req->retry_after_s * 1000 : -1;

	if (req->result != CURLE_OK) {
		http_req_error(req, transport, sizeof(transport));
		http_req_free(req);
		cfl_fail(w, true, -1, "%s: %s", what, transport);
		return NULL;
	}
	if (req->body.data != NULL)
		root = json_loadb(req->body.data, req->body.len, 0, NULL);
	v = cloudflare_judge(req->status, root, why, sizeof(why));
	http_req_free(req);
	switch (v) {
	case CLOUDFLARE_OK:
		return root;
	case CLOUDFLARE_CREDENTIALS:
		cfl_fail(w, false, -1, "%s: credentials rejected: the api_token was refused (%s)", what,
		    why);
		break;
	case CLOUDFLARE_RETRYABLE:
		cfl_fail(w, true, retry_after, "%s: %s", what, why);
		break;
	case CLOUDFLARE_FAILED:
		cfl_fail(w, false, -1, "%s: %s", what, why);
		break;
	}
	json_decref(root);
	return NULL;
}

static void cfl_list_next(struct cfl_work *w);

static void
cfl_zone_done(struct provider_call *call, struct http_req *req)
{
	struct cfl_work *w = call->pdata;
	json_t *root, *result;
	const char *id = NULL;
	size_t i;

	if ((root = cfl_answer(w, req, "GET /zones (the zone id)")) == NULL)
		return;
	result = json_object_get(root, "result");
	for (i = 0; json_is_array(result) && i < json_array_size(result); i++) {
		const json_t *z = json_array_get(result, i);
		const char *name = json_string_value(json_object_get(z, "name"));

		if (name != NULL && strcasecmp(name, call->zone) == 0) {
			id = json_string_value(json_object_get(z, "id"));
			break;
		}
	}
	if (!cfl_is_id(id)) {
		json_decref(root);
		cfl_fail(w, false, -1, "GET /zones: no zone of that name among the zones the api_token "
		    "may see (set \"zone_ids\" or check the token's zone permissions)");
		return;
	}
	(void)cfl_zone_add(w->st, call->zone, id); /* without memory, it is looked up again next time */
	w->zone_id = strdup(id);
	json_decref(root);
	if (w->zone_id == NULL) {
		cfl_fail(w, true, -1, "out of memory");
		return;
	}
	w->by_name = w->nnames <= CFL_BYNAME_MAX;
	w->page = 1;
	cfl_list_next(w);
}

/* Whether name is one of the call's names. */
static bool
cfl_wanted(const struct cfl_work *w, const char *name)
{
	for (size_t i = 0; i < w->nnames; i++)
		if (strcasecmp(w->names[i], name) == 0)
			return true;
	return false;
}

/* Keeps the TXT records of a list page that sit at one of the call's names; -1 out of memory. */
static int
cfl_keep(struct cfl_work *w, const json_t *result)
{
	for (size_t i = 0; json_is_array(result) && i < json_array_size(result); i++) {
		const json_t *r = json_array_get(result, i);
		const char *id = json_string_value(json_object_get(r, "id"));
		const char *name = json_string_value(json_object_get(r, "name"));
		const char *type = json_string_value(json_object_get(r, "type"));
		const char *content = json_string_value(json_object_get(r, "content"));
		struct cloudflare_existing *e;

		bool seen = false;

		if (id == NULL || name == NULL || content == NULL || type == NULL ||
		    strcmp(type, "TXT") != 0 || !cfl_wanted(w, name))
			continue;
		/* pages may overlap when the zone changes between two requests */
		for (size_t k = 0; k < w->nex && !seen; k++)
			seen = strcmp(w->ex[k].id, id) == 0;
		if (seen)
			continue;
		if (w->nex == w->capex) {
			size_t cap = w->capex ? 2 * w->capex : 16;

			if ((e = realloc(w->ex, cap * sizeof(*e))) == NULL)
				return -1;
			w->ex = e;
			w->capex = cap;
		}
		e = &w->ex[w->nex];
		e->id = strdup(id);
		e->name = provider_zone_name(name);
		e->content = strdup(content);
		w->nex++;
		if (e->id == NULL || e->name == NULL || e->content == NULL)
			return -1;
	}
	return 0;
}

static void cfl_write_next(struct cfl_work *w);

static void
cfl_list_done(struct provider_call *call, struct http_req *req)
{
	struct cfl_work *w = call->pdata;
	char what[400];
	json_t *root;
	json_int_t pages;
	cf_err err = { { 0 } };

	if (w->by_name)
		snprintf(what, sizeof(what), "GET /zones/%s/dns_records (TXT at %s, page %ld)",
		    w->zone_id, w->names[w->name_i], w->page);
	else
		snprintf(what, sizeof(what), "GET /zones/%s/dns_records (TXT records, page %ld)",
		    w->zone_id, w->page);
	if ((root = cfl_answer(w, req, what)) == NULL)
		return;
	if (cfl_keep(w, json_object_get(root, "result")) != 0) {
		json_decref(root);
		cfl_fail(w, true, -1, "%s: out of memory", what);
		return;
	}
	pages = json_integer_value(json_object_get(json_object_get(root, "result_info"), "total_pages"));
	json_decref(root);
	if (pages > CFL_MAX_PAGES) {
		cfl_fail(w, false, -1, "%s: %lld pages of TXT records, more than %d", what,
		    (long long)pages, CFL_MAX_PAGES);
		return;
	}
	if (!w->by_name && w->page == 1 && pages - 1 > (json_int_t)w->nnames) {
		/* a large zone: asking for each name costs fewer requests than reading it all */
		cfl_existing_clear(w);
		w->by_name = true;
		w->name_i = 0;
		w->page = 1;
		cfl_list_next(w);
		return;
	}
	if (w->page < pages) {
		w->page++;
		cfl_list_next(w);
		return;
	}
	if (w->by_name && ++w->name_i < w->nnames) {
		w->page = 1;
		cfl_list_next(w);
		return;
	}
	w->ops = cloudflare_plan(call->action, call->recs, call->nrec, w->ex, w->nex, w->st->ttl, &err);
	if (w->ops == NULL) {
		cfl_fail(w, false, -1, "%s", err.msg);
		return;
	}
	if (json_array_size(w->ops) == 0) {
		cfl_finish(w); /* every value already where it should be: no write */
		return;
	}
	w->op_i = 0;
	cfl_write_next(w);
}

static void
cfl_list_next(struct cfl_work *w)
{
	cf_buf path = { 0 };

	if (cf_buf_printf(&path, "/zones/%s/dns_records?type=TXT", w->zone_id) != 0 ||
	    (w->by_name && (cf_buf_printf(&path, "&name=") != 0 ||
	    cfl_urlencode(&path, w->names[w->name_i]) != 0)) ||
	    cf_buf_printf(&path, "&per_page=%d&page=%ld", CFL_PER_PAGE, w->page) != 0) {
		cf_buf_free(&path);
		cfl_fail(w, true, -1, "listing TXT records: out of memory");
		return;
	}
	cfl_send(w, "GET", path.data, NULL, cfl_list_done);
	cf_buf_free(&path);
}

/* The operations of the request now being sent: [op_i, op_i + n). */
static size_t
cfl_chunk(const struct cfl_work *w)
{
	size_t left = json_array_size(w->ops) - w->op_i;

	return left < CFL_BATCH_MAX ? left : CFL_BATCH_MAX;
}

static void
cfl_write_done(struct provider_call *call, struct http_req *req)
{
	struct cfl_work *w = call->pdata;
	char what[200];
	json_t *root;

	snprintf(what, sizeof(what), "POST /zones/%s/dns_records/batch (%zu %s)", w->zone_id,
	    cfl_chunk(w), call->action == PROVIDER_ENSURE ? "creations" : "deletions");
	if ((root = cfl_answer(w, req, what)) == NULL)
		return;
	json_decref(root);
	w->op_i += cfl_chunk(w);
	if (w->op_i < json_array_size(w->ops))
		cfl_write_next(w);
	else
		cfl_finish(w);
}

static void
cfl_write_next(struct cfl_work *w)
{
	size_t n = cfl_chunk(w);
	json_t *chunk = json_array(), *body = NULL;
	char *text = NULL, path[128];

	for (size_t i = 0; chunk != NULL && i < n; i++)
		if (json_array_append(chunk, json_array_get(w->ops, w->op_i + i)) != 0)
			goto oom;
	if (chunk == NULL)
		goto oom;
	body = json_pack("{s:O}", w->call->action == PROVIDER_ENSURE ? "posts" : "deletes", chunk);
	if (body == NULL || (text = json_dumps(body, JSON_COMPACT)) == NULL)
		goto oom;
	snprintf(path, sizeof(path), "/zones/%s/dns_records/batch", w->zone_id);
	cfl_send(w, "POST", path, text, cfl_write_done);
	goto out;
oom:
	cfl_fail(w, true, -1, "building the batch: out of memory");
out:
	free(text);
	json_decref(body);
	json_decref(chunk);
}

static void
cfl_start(struct provider_call *call)
{
	struct cfl_state *st = call->acct->state;
	struct cfl_work *w = calloc(1, sizeof(*w));
	cf_buf path = { 0 };
	size_t i, j;

	if (w == NULL || (w->names = calloc(call->nrec ? call->nrec : 1, sizeof(*w->names))) == NULL) {
		free(w);
		provider_call_fail(call, true, -1, "cloudflare account \"%s\", zone %s: out of memory",
		    call->acct->name, call->zone);
		provider_call_done(call);
		return;
	}
	w->call = call;
	w->st = st;
	call->pdata = w;
	for (i = 0; i < call->nrec; i++) {
		if (!txtdata_value_ok(call->recs[i].value)) {
			cfl_fail(w, false, -1, "record %s: the value is empty, longer than 4000 octets or "
			    "not printable ASCII", call->recs[i].fqdn);
			return;
		}
		for (j = 0; j < w->nnames && strcasecmp(w->names[j], call->recs[i].fqdn) != 0; j++)
			;
		if (j == w->nnames)
			w->names[w->nnames++] = call->recs[i].fqdn;
	}
	if (w->nnames == 0) {
		cfl_finish(w);
		return;
	}
	w->zone_id = zone_ids_find(&st->zones, call->zone);
	if (w->zone_id != NULL) {
		w->by_name = w->nnames <= CFL_BYNAME_MAX;
		w->page = 1;
		cfl_list_next(w);
		return;
	}
	if (cf_buf_printf(&path, "/zones?name=") != 0 || cfl_urlencode(&path, call->zone) != 0 ||
	    cf_buf_printf(&path, "&per_page=50") != 0) {
		cf_buf_free(&path);
		cfl_fail(w, true, -1, "looking up the zone id: out of memory");
		return;
	}
	cfl_send(w, "GET", path.data, NULL, cfl_zone_done);
	cf_buf_free(&path);
}

/*
 * default_rate: Cloudflare allows 1,200 requests per 5 minutes per user or token, and a 429
 * then blocks the token for 5 minutes. A bucket of rate r and burst b lets through at most
 * b + 300 r requests in any 5 minutes: "1100/5m:50" gives 50 + 1,100 = 1,150, under the limit
 * with 50 to spare for other uses of the same token (the dashboard, scripts).
 */
static const char *const cfl_settings[] = { "api_url", "api_token", "zone_ids", "ttl", NULL };

const struct provider_ops provider_cloudflare = {
	.type = "cloudflare",
	.summary = "Cloudflare API v4 (Bearer token): one batch request per zone and call",
	.batch_max = CFL_BATCH_MAX,
	.default_rate = "1100/5m:50",
	.settings = cfl_settings,
	.open = cfl_open,
	.close = cfl_close,
	.start = cfl_start,
};
