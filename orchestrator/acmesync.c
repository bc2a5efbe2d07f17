/*
 * acmesync.c - the CLI's synchronous ACME requests: the directory, a nonce carried from one
 * answer to the next request, and JWS POSTs with badNonce retried.
 */
#include "acmesync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jws.h"

#define ACMESYNC_BADNONCE_RETRIES 5
#define ACME_ERROR_PREFIX "urn:ietf:params:acme:error:"

int
acmesync_open(struct acmesync *a, const struct http_settings *hs, const char *directory_url,
    cf_err *err)
{
	struct http_req *req = NULL;
	int rc = -1;

	memset(a, 0, sizeof(*a));
	a->http = *hs;
	if ((a->directory_url = strdup(directory_url)) == NULL) {
		cf_errf(err, "ACME directory %s: out of memory", directory_url);
		goto out;
	}
	if ((req = http_req_new(hs, directory_url, NULL, NULL, false, err)) == NULL ||
	    http_req_perform(req, err) != 0)
		goto out;
	if (req->status != 200) {
		cf_errf(err, "GET %s: HTTP %ld", directory_url, req->status);
		goto out;
	}
	a->dir = req->body.data ? json_loadb(req->body.data, req->body.len, 0, NULL) : NULL;
	if (!json_is_object(a->dir)) {
		cf_errf(err, "GET %s: the answer is not a JSON object", directory_url);
		goto out;
	}
	rc = 0;
out:
	http_req_free(req);
	if (rc != 0)
		acmesync_close(a);
	return rc;
}

void
acmesync_close(struct acmesync *a)
{
	if (a == NULL)
		return;
	free(a->directory_url);
	json_decref(a->dir);
	free(a->nonce);
	memset(a, 0, sizeof(*a));
}

const char *
acmesync_resource(const struct acmesync *a, const char *name)
{
	return json_string_value(json_object_get(a->dir, name));
}

/* A nonce from newNonce into a->nonce. 0 or -1 with err set. */
static int
fetch_nonce(struct acmesync *a, cf_err *err)
{
	const char *url = acmesync_resource(a, "newNonce");
	struct http_req *req;
	int rc = -1;

	if (url == NULL) {
		cf_errf(err, "ACME directory %s lacks newNonce", a->directory_url);
		return -1;
	}
	if ((req = http_req_new(&a->http, url, NULL, NULL, true, err)) == NULL)
		return -1;
	if (http_req_perform(req, err) == 0) {
		if (req->nonce && (a->nonce = strdup(req->nonce)) != NULL)
			rc = 0;
		else
			cf_errf(err, "newNonce %s: no Replay-Nonce header (HTTP %ld)", url, req->status);
	}
	http_req_free(req);
	return rc;
}

void
acmesync_reply_clear(struct acmesync_reply *r)
{
	if (r == NULL)
		return;
	free(r->location);
	json_decref(r->doc);
	memset(r, 0, sizeof(*r));
}

int
acmesync_is_problem(const struct acmesync_reply *out, const char *name)
{
	return out->problem != NULL && strncmp(out->problem, ACME_ERROR_PREFIX, strlen(ACME_ERROR_PREFIX)) == 0 &&
	    strcmp(out->problem + strlen(ACME_ERROR_PREFIX), name) == 0;
}

/* Fills out from req; the problem type and detail quoted into out->text. */
static void
reply_from(struct acmesync_reply *out, const struct http_req *req)
{
	char qtype[4 * 80 + 8] = "", qdetail[4 * 200 + 8] = "";
	const char *type, *detail;

	out->status = req->status;
	out->location = req->location ? strdup(req->location) : NULL;
	out->doc = req->body.data ? json_loadb(req->body.data, req->body.len, 0, NULL) : NULL;
	type = json_string_value(json_object_get(out->doc, "type"));
	detail = json_string_value(json_object_get(out->doc, "detail"));
	if (req->status >= 400 && type != NULL)
		out->problem = type;
	if (type)
		cf_quote(qtype, sizeof(qtype), type, strlen(type), 80);
	if (detail)
		cf_quote(qdetail, sizeof(qdetail), detail, strlen(detail), 200);
	snprintf(out->text, sizeof(out->text), "HTTP %ld%s%s%s%s", req->status, type ? " " : "", qtype,
	    detail ? ": " : "", qdetail);
}

int
acmesync_post(struct acmesync *a, EVP_PKEY *key, const char *kid, const char *url, const char *payload,
    struct acmesync_reply *out, cf_err *err)
{
	memset(out, 0, sizeof(*out));
	for (int attempt = 0; attempt <= ACMESYNC_BADNONCE_RETRIES; attempt++) {
		struct http_req *req;
		char *jws;

		if (a->nonce == NULL && fetch_nonce(a, err) != 0)
			return -1;
		jws = jws_sign(key, kid, a->nonce, url, payload, err);
		free(a->nonce);
		a->nonce = NULL;
		if (jws == NULL)
			return -1;
		req = http_req_new(&a->http, url, jws, "application/jose+json", false, err);
		free(jws);
		if (req == NULL)
			return -1;
		if (http_req_perform(req, err) != 0) {
			http_req_free(req);
			return -1;
		}
		if (req->nonce)
			a->nonce = strdup(req->nonce);
		acmesync_reply_clear(out);
		reply_from(out, req);
		http_req_free(req);
		if (!acmesync_is_problem(out, "badNonce"))
			return 0;
	}
	return 0; /* the last badNonce is the answer */
}
