/*
 * challtestsrv.c - the provider for pebble-challtestsrv, the test DNS server of Pebble: records
 * are added with POST /set-txt {"host": "<fqdn>.", "value": "<value>"}, which appends a value.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider.h"

struct cts_call {
	provider_done_fn done;
	void *arg;
};

static int
cts_check(const struct provider_config *cfg, cf_err *err)
{
	if (cfg->challtestsrv_url == NULL || cfg->challtestsrv_url[0] == '\0') {
		cf_errf(err, "provider challtestsrv: no management URL (set CERTFLEET_CHALLTESTSRV_URL)");
		return -1;
	}
	return 0;
}

static void
cts_done(struct http_req *req, void *arg)
{
	struct cts_call *call = arg;
	char msg[CURL_ERROR_SIZE + 128], why[CURL_ERROR_SIZE + 32];

	if (req->result == CURLE_OK && req->status == 200) {
		call->done(call->arg, NULL);
	} else {
		snprintf(msg, sizeof(msg), "challtestsrv set-txt %s: %s", req->url,
		    http_req_error(req, why, sizeof(why)));
		call->done(call->arg, msg);
	}
	free(call);
	http_req_free(req);
}

static int
cts_ensure(const struct provider_config *cfg, struct loop *loop, const char *fqdn, const char *value,
    provider_done_fn done, void *arg, cf_err *err)
{
	struct cts_call *call = NULL;
	struct http_req *req = NULL;
	json_t *body = NULL;
	char *text = NULL, *url = NULL, *host = NULL;
	int rc = -1;

	if (asprintf(&url, "%s/set-txt", cfg->challtestsrv_url) < 0 ||
	    asprintf(&host, "%s.", fqdn) < 0) {
		url = host = NULL;
		cf_errf(err, "challtestsrv ensure %s: out of memory", fqdn);
		goto out;
	}
	body = json_pack("{s:s, s:s}", "host", host, "value", value);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	call = calloc(1, sizeof(*call));
	if (text == NULL || call == NULL) {
		cf_errf(err, "challtestsrv ensure %s: out of memory", fqdn);
		goto out;
	}
	req = http_req_new(&cfg->http, url, text, "application/json", false, err);
	if (req == NULL)
		goto out;
	call->done = done;
	call->arg = arg;
	req->done = cts_done;
	req->arg = call;
	if (loop_add_transfer(loop, req, err) != 0)
		goto out;
	req = NULL;
	call = NULL;
	rc = 0;
out:
	http_req_free(req);
	free(call);
	free(text);
	json_decref(body);
	free(url);
	free(host);
	return rc;
}

const struct provider_ops provider_challtestsrv = {
	.name = "challtestsrv",
	.check = cts_check,
	.ensure = cts_ensure,
};
