/*
 * challtestsrv.c - the provider for pebble-challtestsrv, the test DNS server of Pebble: records
 * are added with POST /set-txt {"host": "<fqdn>.", "value": "<value>"}, which appends a value,
 * and removed with POST /clear-txt {"host": "<fqdn>."}, which drops every value at the name (the
 * server knows no finer removal; it only ever holds test records).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider.h"

static const char *const cts_settings[] = { "url", NULL };

static int
cts_open(struct provider_account *acct, cf_err *err)
{
	const char *url = provider_setting(acct, "url");

	if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
		cf_errf(err, "provider %s: \"url\" must be challtestsrv's management URL, e.g. "
		    "http://127.0.0.1:8055 (CERTFLEET_CHALLTESTSRV_URL)", acct->name);
		return -1;
	}
	if (provider_url_check(acct, "url", url, err) != 0)
		return -1;
	return 0;
}

static void
cts_done(struct provider_call *call, struct http_req *req)
{
	char why[CURL_ERROR_SIZE + 32];

	if (req->result != CURLE_OK || req->status != 200)
		provider_call_fail(call, true, -1, "provider %s: challtestsrv %s: %s", call->acct->name, req->url,
		    http_req_error(req, why, sizeof(why)));
	http_req_free(req);
	provider_call_done(call);
}

static void
cts_start(struct provider_call *call)
{
	const struct provider_record *rec = &call->recs[0];
	bool ensure = call->action == PROVIDER_ENSURE;
	struct http_req *req = NULL;
	json_t *body = NULL;
	char *text = NULL, *url = NULL, *host = NULL;
	cf_err err;

	if (asprintf(&url, "%s/%s", provider_setting(call->acct, "url"), ensure ? "set-txt" : "clear-txt") < 0 ||
	    asprintf(&host, "%s.", rec->fqdn) < 0) {
		url = host = NULL;
		provider_call_fail(call, true, -1, "provider %s: out of memory", call->acct->name);
		goto out;
	}
	body = ensure ? json_pack("{s:s, s:s}", "host", host, "value", rec->value) : json_pack("{s:s}", "host", host);
	if (body == NULL || (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		provider_call_fail(call, true, -1, "provider %s: out of memory", call->acct->name);
		goto out;
	}
	if ((req = http_req_new(&call->acct->http, url, text, "application/json", false, &err)) == NULL) {
		provider_call_fail(call, true, -1, "provider %s: %s", call->acct->name, err.msg);
		goto out;
	}
	provider_http(call, req, cts_done);
out:
	free(text);
	json_decref(body);
	free(url);
	free(host);
	if (req == NULL)
		provider_call_done(call);
}

const struct provider_ops provider_challtestsrv = {
	.type = "challtestsrv",
	.summary = "pebble-challtestsrv's management API (tests and the demo)",
	.batch_max = 1,
	.zoneless = true,
	.settings = cts_settings,
	.open = cts_open,
	.start = cts_start,
};
