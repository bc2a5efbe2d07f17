/*
 * ari.c - renewalInfo (RFC 9773) for a batch of certificates on one event loop: at most
 * max_inflight requests at once, each after its turn of the CA's limit, transport errors, 429 and
 * 5xx tried again after their Retry-After (when short) or a back-off, and every answer read and
 * checked before it is believed.
 */
#include "ari.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

struct ari_batch {
	struct loop *loop;
	const struct ari_config *cfg;
	struct ari_check *checks;
	size_t n;
	size_t next;               /* the first check not started */
	size_t inflight;
	size_t done;
	size_t failed;
	int max_inflight;
	int max_tries;
};

static void check_turn(void *arg);

/* ---- reading answers ---- */

static int
digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int
ari_time_parse(const char *s, int64_t *out)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	struct tm tm;
	const char *p;

	if (s == NULL || strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
	    digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) || s[13] != ':' ||
	    digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
		return -1;
	p = s + 19;
	if (*p == '.') {
		if (!isdigit((unsigned char)p[1]))
			return -1;
		for (p++; isdigit((unsigned char)*p); p++)
			;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		p += 6;
	} else {
		return -1;
	}
	/* a leap second (60) is read as the next second */
	if (*p != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return -1;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = (int64_t)timegm(&tm) - sign * (int64_t)(oh * 3600 + om * 60);
	return 0;
}

int
ari_parse(const char *body, size_t len, struct ari_window *w, char *why, size_t whylen)
{
	json_t *root = NULL, *win, *start, *end, *expl;
	json_error_t jerr;
	int rc = -1;

	memset(w, 0, sizeof(*w));
	if (body == NULL || len == 0) {
		snprintf(why, whylen, "empty answer");
		return -1;
	}
	if ((root = json_loadb(body, len, 0, &jerr)) == NULL || !json_is_object(root)) {
		snprintf(why, whylen, "answer is not a JSON object");
		goto out;
	}
	win = json_object_get(root, "suggestedWindow");
	if (!json_is_object(win)) {
		snprintf(why, whylen, "no suggestedWindow object");
		goto out;
	}
	start = json_object_get(win, "start");
	end = json_object_get(win, "end");
	if (!json_is_string(start) || !json_is_string(end)) {
		snprintf(why, whylen, "suggestedWindow without start or end");
		goto out;
	}
	bool start_bad = ari_time_parse(json_string_value(start), &w->start_s) != 0;
	if (start_bad || ari_time_parse(json_string_value(end), &w->end_s) != 0) {
		json_t *bad = start_bad ? start : end;
		char q[80];
		cf_quote(q, sizeof(q), json_string_value(bad), json_string_length(bad), 16);
		snprintf(why, whylen, "suggestedWindow %s \"%s\" is not an RFC 3339 time", start_bad ? "start" : "end", q);
		goto out;
	}
	if (w->end_s < w->start_s) {
		snprintf(why, whylen, "suggestedWindow ends before it starts");
		goto out;
	}
	expl = json_object_get(root, "explanationURL");
	/* shown to operators as a link: https only, printable, of a sane length */
	if (json_is_string(expl) && strncasecmp(json_string_value(expl), "https://", 8) == 0 &&
	    json_string_length(expl) <= 1024) {
		const char *u = json_string_value(expl);
		bool printable = true;
		for (const char *c = u; *c; c++)
			printable = printable && *c > 0x20 && *c < 0x7f;
		if (printable && (w->explanation_url = strdup(u)) == NULL) {
			snprintf(why, whylen, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* ---- the batch ---- */

static void
start_more(struct ari_batch *b)
{
	while (b->next < b->n && b->inflight < (size_t)b->max_inflight) {
		struct ari_check *c = &b->checks[b->next++];
		c->batch = b;
		c->tries = 0;
		c->retry_after_s = -1;
		loop_timer_init(&c->timer);
		b->inflight++;
		limiter_acquire(c->limit, &c->wait, b->loop, check_turn, c);
	}
}

static void
check_end(struct ari_check *c, enum ari_status st)
{
	struct ari_batch *b = c->batch;

	c->status = st;
	b->inflight--;
	b->done++;
	if (st == ARI_FAILED)
		b->failed++;
	start_more(b);
}

static void
check_retry(void *arg)
{
	struct ari_check *c = arg;
	limiter_acquire(c->limit, &c->wait, c->batch->loop, check_turn, c);
}

static void
on_answer(struct http_req *req, void *arg)
{
	struct ari_check *c = arg;
	struct ari_batch *b = c->batch;
	char desc[160], why[160];
	bool retryable;

	c->http_status = req->status;
	c->retry_after_s = req->retry_after_s;
	if (req->result == CURLE_OK && req->status == 200) {
		if (ari_parse(req->body.data, req->body.len, &c->win, why, sizeof(why)) == 0) {
			c->error[0] = '\0';
			check_end(c, ARI_OK);
		} else {
			snprintf(c->error, sizeof(c->error), "renewalInfo %.120s: %.120s", c->url, why);
			check_end(c, ARI_FAILED);
		}
		goto out;
	}
	if (req->result == CURLE_OK && req->status == 404) {
		snprintf(c->error, sizeof(c->error), "renewalInfo %.120s: the CA does not know the certificate (404)", c->url);
		check_end(c, ARI_UNKNOWN);
		goto out;
	}
	http_req_error(req, desc, sizeof(desc));
	snprintf(c->error, sizeof(c->error), "renewalInfo %.120s: %.120s", c->url, desc);
	retryable = req->result != CURLE_OK || req->status == 429 || req->status >= 500;
	if (req->result == CURLE_OK && req->status == 429)
		limiter_penalize(c->limit, req->retry_after_s > 0 ? req->retry_after_s * 1000L : 1000L);
	if (retryable && c->tries < b->max_tries && req->retry_after_s <= ARI_RETRY_INLINE_MAX_S) {
		long delay = req->retry_after_s >= 0 ? req->retry_after_s * 1000L : 500L << (c->tries - 1);
		if (loop_timer_arm(b->loop, &c->timer, delay, check_retry, c) == 0)
			goto out;
	}
	check_end(c, ARI_FAILED);
out:
	http_req_free(req);
}

/* The check's turn under the CA's limit: send it. */
static void
check_turn(void *arg)
{
	struct ari_check *c = arg;
	struct ari_batch *b = c->batch;
	struct http_req *req;
	cf_err err;

	c->tries++;
	req = http_req_new(&b->cfg->http, c->url, NULL, NULL, false, &err);
	if (req == NULL) {
		snprintf(c->error, sizeof(c->error), "renewalInfo: %.200s", err.msg);
		check_end(c, ARI_FAILED);
		return;
	}
	req->done = on_answer;
	req->arg = c;
	if ((b->cfg->transport ? b->cfg->transport->send(b->cfg->transport->arg, req, &err)
			       : loop_add_transfer(b->loop, req, &err)) != 0) {
		http_req_free(req);
		snprintf(c->error, sizeof(c->error), "renewalInfo %.120s: %.120s", c->url, err.msg);
		check_end(c, ARI_FAILED);
	}
}

int
ari_fetch(struct loop *loop, const struct ari_config *cfg, struct ari_check *checks, size_t n, cf_err *err)
{
	struct ari_batch b = {
		.loop = loop,
		.cfg = cfg,
		.checks = checks,
		.n = n,
		.max_inflight = cfg->max_inflight > 0 ? cfg->max_inflight : 64,
		.max_tries = cfg->max_tries > 0 ? cfg->max_tries : 3,
	};
	int64_t next_progress = cf_mono_ms() + cfg->progress_ms;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		checks[i].status = ARI_PENDING;
		checks[i].error[0] = '\0';
	}
	start_more(&b);
	while (b.done < n) {
		if (loop_run_once(loop, 200) < 0) {
			cf_errf(err, "ARI: the event loop failed after %zu of %zu checks", b.done, n);
			rc = -1;
			break;
		}
		if (cfg->progress != NULL && cfg->progress_ms > 0 && cf_mono_ms() >= next_progress) {
			cfg->progress(cfg->progress_arg, b.done, b.failed);
			next_progress = cf_mono_ms() + cfg->progress_ms;
		}
	}
	if (rc != 0) {
		/* the loop is gone: whatever it held will never answer */
		for (size_t i = 0; i < n; i++)
			if (checks[i].status == ARI_PENDING) {
				checks[i].status = ARI_FAILED;
				snprintf(checks[i].error, sizeof(checks[i].error), "renewalInfo %.120s: not answered", checks[i].url);
			}
	}
	return rc;
}

void
ari_checks_clear(struct ari_check *checks, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(checks[i].win.explanation_url);
		checks[i].win.explanation_url = NULL;
	}
}
