/*
 * provider.c - what every provider implementation shares: settings and secrets of an account,
 * zones, and the calls' plumbing (rate-limited HTTP, blocking work on a pool).
 */
#include "provider.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "metrics.h"

#define PROVIDER_HTTP_RETRIES 4 /* 429s absorbed by provider_http before its caller sees one */


/* ---- settings and secrets ---- */

const char *
provider_setting(const struct provider_account *acct, const char *key)
{
	return json_string_value(json_object_get(acct->settings, key));
}

/* The first line of path, which must be a regular file not readable by group or others. */
static char *
secret_from_file(const struct provider_account *acct, const char *key, const char *path, cf_err *err)
{
	struct stat st;
	FILE *f = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if ((f = fopen(path, "r")) == NULL) {
		cf_errf(err, "provider %s: %s_file \"%s\": %s", acct->name, key, path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		cf_errf(err, "provider %s: %s_file \"%s\" is not a regular file", acct->name, key, path);
		goto fail;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		cf_errf(err, "provider %s: %s_file \"%s\" is readable by group or others (mode %03o); "
		    "a secret must be chmod 600", acct->name, key, path, (unsigned)(st.st_mode & 0777));
		goto fail;
	}
	if ((n = getline(&line, &cap, f)) <= 0) {
		cf_errf(err, "provider %s: %s_file \"%s\" is empty", acct->name, key, path);
		goto fail;
	}
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		line[--n] = '\0';
	if (n == 0) {
		cf_errf(err, "provider %s: %s_file \"%s\" starts with an empty line", acct->name, key, path);
		goto fail;
	}
	fclose(f);
	return line;
fail:
	free(line);
	fclose(f);
	return NULL;
}

char *
provider_secret(const struct provider_account *acct, const char *key, bool required, cf_err *err)
{
	char name[128];
	const char *v;

	if ((v = provider_setting(acct, key)) != NULL) {
		if (!acct->source_private) {
			cf_errf(err, "provider %s: \"%s\" is a secret but %s is readable by group or others; "
			    "chmod 600 it, or use \"%s_file\" or \"%s_env\"", acct->name, key,
			    acct->source ? acct->source : "the providers file", key, key);
			return NULL;
		}
		char *s = strdup(v);
		if (s == NULL)
			cf_errf(err, "provider %s: out of memory", acct->name);
		return s;
	}
	snprintf(name, sizeof(name), "%s_file", key);
	if ((v = provider_setting(acct, name)) != NULL)
		return secret_from_file(acct, key, v, err);
	snprintf(name, sizeof(name), "%s_env", key);
	if ((v = provider_setting(acct, name)) != NULL) {
		const char *s = getenv(v);
		if (s == NULL || s[0] == '\0') {
			cf_errf(err, "provider %s: %s_env names \"%s\", which is not set", acct->name, key, v);
			return NULL;
		}
		char *copy = strdup(s);
		if (copy == NULL)
			cf_errf(err, "provider %s: out of memory", acct->name);
		return copy;
	}
	if (required)
		cf_errf(err, "provider %s: no \"%s\": give \"%s_file\" (a file of mode 600) or \"%s_env\"",
		    acct->name, key, key, key);
	else if (err)
		err->msg[0] = '\0';
	return NULL;
}

int
provider_url_check(const struct provider_account *acct, const char *key, const char *url, cf_err *err)
{
	char what[160];

	snprintf(what, sizeof(what), "provider %s: \"%s\"", acct->name, key);
	return http_url_check(url, acct->http.allow_http_loopback, what, err);
}

/* ---- zones ---- */

char *
provider_zone_name(const char *s)
{
	size_t n = strlen(s);
	char *z;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if ((z = strndup(s, n)) == NULL)
		return NULL;
	for (char *c = z; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return z;
}

const char *
provider_zone_of(const struct provider_account *acct, const char *fqdn)
{
	const char *best = NULL;
	size_t flen = strlen(fqdn), blen = 0;

	for (size_t i = 0; i < acct->nzones; i++) {
		const char *z = acct->zones[i];
		size_t zlen = strlen(z);
		if (zlen > flen || zlen < blen || strcasecmp(fqdn + flen - zlen, z) != 0)
			continue;
		if (zlen < flen && fqdn[flen - zlen - 1] != '.')
			continue;
		best = z;
		blen = zlen;
	}
	return best;
}

/* ---- calls ---- */

void
provider_call_fail(struct provider_call *call, bool retryable, int64_t retry_after_ms, const char *fmt, ...)
{
	va_list ap;

	if (call->failed)
		return;
	call->failed = true;
	call->retryable = retryable;
	call->retry_after_ms = retry_after_ms;
	va_start(ap, fmt);
	vsnprintf(call->error, sizeof(call->error), fmt, ap);
	va_end(ap);
}

static void
call_finish(void *arg)
{
	struct provider_call *call = arg;

	call->done(call);
}

void
provider_call_done(struct provider_call *call)
{
	/* through a timer, so that a provider that ends at once never re-enters its caller */
	limiter_acquire(NULL, &call->wait, call->loop, call_finish, call);
}

void
provider_call_start(struct provider_call *call)
{
	call->failed = false;
	call->retryable = false;
	call->retry_after_ms = -1;
	call->error[0] = '\0';
	call->pdata = NULL;
	if (call->nrec == 0 || call->nrec > call->acct->batch_max) {
		provider_call_fail(call, false, -1, "provider %s: %zu records in one call (at most %zu)",
		    call->acct->name, call->nrec, call->acct->batch_max);
		provider_call_done(call);
		return;
	}
	call->acct->ops->start(call);
}

static void http_send(void *arg);

/* The limit the next request must wait for: none when the call already holds a turn. */
static struct limiter *
call_turn(struct provider_call *call)
{
	if (call->turn_held) {
		call->turn_held = false;
		return NULL;
	}
	return call->acct->limit;
}

static void
http_back(struct http_req *req, void *arg)
{
	struct provider_call *call = arg;
	bool throttled = req->status == 429 || (req->status == 503 && req->retry_after_s >= 0);

	if (throttled && call->http_tries < PROVIDER_HTTP_RETRIES) {
		int64_t pause = req->retry_after_s >= 0 ? req->retry_after_s * 1000 : 1000LL << call->http_tries;
		log_warn("provider %s: %s answered %ld; pausing its requests for %lld ms",
		    call->acct->name, call->acct->ops->type, req->status, (long long)pause);
		limiter_penalize(call->acct->limit, pause);
		call->http_tries++;
		cf_buf_reset(&req->body);
		req->status = 0;
		req->result = CURLE_OK;
		limiter_acquire(call->acct->limit, &call->wait, call->loop, http_send, call);
		if (call->acct->limit == NULL) /* no bucket to pause: wait here */
			limiter_wait_arm(&call->wait, pause);
		return;
	}
	metrics_add(metrics_series(&metrics_provider_requests, call->acct->name, metrics_status_class(req->status)), 1);
	call->req = NULL;
	call->http_done(call, req);
}

static void
http_send(void *arg)
{
	struct provider_call *call = arg;
	struct http_req *req = call->req;
	cf_err err;

	req->done = http_back;
	req->arg = call;
	if (loop_add_transfer(call->loop, req, &err) != 0) {
		req->result = CURLE_FAILED_INIT;
		snprintf(req->errbuf, sizeof(req->errbuf), "%.200s", err.msg);
		call->req = NULL;
		call->http_done(call, req);
	}
}

void
provider_http(struct provider_call *call, struct http_req *req,
    void (*done)(struct provider_call *call, struct http_req *req))
{
	call->req = req;
	call->http_done = done;
	call->http_tries = 0;
	limiter_acquire(call_turn(call), &call->wait, call->loop, http_send, call);
}

static void
blocking_back(void *arg)
{
	struct provider_call *call = arg;

	metrics_add(metrics_series(&metrics_provider_requests, call->acct->name, call->failed ? "error" : "ok"), 1);
	call_finish(arg);
}

static void
blocking_go(void *arg)
{
	struct provider_call *call = arg;

	if (call->acct->pool == NULL || blockpool_submit(call->acct->pool, call->loop, call->work, blocking_back, call) != 0) {
		provider_call_fail(call, true, -1, "provider %s: %s", call->acct->name,
		    call->acct->pool ? "out of memory queueing the call" : "no thread pool for blocking calls");
		call_finish(call);
	}
}

void
provider_blocking(struct provider_call *call, loop_fn work)
{
	call->work = work;
	limiter_acquire(call_turn(call), &call->wait, call->loop, blocking_go, call);
}
