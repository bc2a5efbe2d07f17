/*
 * test_ari.c - unit tests of workers/ari.c: RFC 3339 times and renewalInfo answers (bad ones
 * first), then batches against a CA played through struct http_transport: each kind of answer,
 * retries after 500 and 429 (Retry-After waited for), the cap on requests in flight, the rate limit.
 */
#include <math.h>

#include "ari.h"
#include "check.h"

#define CA "https://ca.test/renewal-info/"
#define MAX_REQS 256

/* ---- times and answers ---- */

static void
test_time_parse(void)
{
	int64_t t;

	CHECK(ari_time_parse(NULL, &t) == -1);
	CHECK(ari_time_parse("", &t) == -1);
	CHECK(ari_time_parse("2026-12-03", &t) == -1);
	CHECK(ari_time_parse("2026-12-03T10:00:00", &t) == -1);     /* no offset */
	CHECK(ari_time_parse("2026-12-03 10:00:00Z", &t) == -1);
	CHECK(ari_time_parse("2026-13-03T10:00:00Z", &t) == -1);
	CHECK(ari_time_parse("2026-02-29T10:00:00Z", &t) == -1);    /* not a leap year */
	CHECK(ari_time_parse("2026-12-03T10:00:00Zjunk", &t) == -1);
	CHECK(ari_time_parse("2026-12-03T10:00:00.Z", &t) == -1);
	CHECK(ari_time_parse("2026-12-03T10:00:00+1:00", &t) == -1);
	CHECK(ari_time_parse("1970-01-01T00:00:00Z", &t) == 0 && t == 0);
	CHECK(ari_time_parse("2026-12-03T10:00:00Z", &t) == 0 && t == 1796292000);
	CHECK(ari_time_parse("2026-12-03t10:00:00.123456z", &t) == 0 && t == 1796292000);
	CHECK(ari_time_parse("2026-12-03T12:30:00+02:30", &t) == 0 && t == 1796292000);
	CHECK(ari_time_parse("2026-12-03T07:00:00-03:00", &t) == 0 && t == 1796292000);
	CHECK(ari_time_parse("2024-02-29T00:00:00Z", &t) == 0 && t == 1709164800);
}

static int
parse(const char *body, struct ari_window *w, char *why)
{
	return ari_parse(body, body ? strlen(body) : 0, w, why, 160);
}

static void
test_parse(void)
{
	struct ari_window w;
	char why[160];

	CHECK(parse(NULL, &w, why) == -1 && check_says(why, "empty answer"));
	CHECK(parse("{\"suggestedWindow\": {", &w, why) == -1 && check_says(why, "not a JSON object"));
	CHECK(parse("[1]", &w, why) == -1 && check_says(why, "not a JSON object"));
	CHECK(parse("{}", &w, why) == -1 && check_says(why, "no suggestedWindow"));
	CHECK(parse("{\"suggestedWindow\": {\"start\": \"2026-12-03T10:00:00Z\"}}", &w, why) == -1 &&
	    check_says(why, "without start or end"));
	CHECK(parse("{\"suggestedWindow\": {\"start\": 5, \"end\": \"2026-12-03T10:00:00Z\"}}", &w, why) == -1 &&
	    check_says(why, "without start or end"));
	CHECK(parse("{\"suggestedWindow\": {\"start\": \"yesterday\", \"end\": \"2026-12-03T10:00:00Z\"}}", &w, why) == -1 &&
	    check_says(why, "start \"yesterday\" is not an RFC 3339 time"));
	CHECK(parse("{\"suggestedWindow\": {\"start\": \"2026-12-03T10:00:00Z\", \"end\": \"\\n\"}}", &w, why) == -1 &&
	    check_says(why, "end \"\\n\""));
	CHECK(parse("{\"suggestedWindow\": {\"start\": \"2026-12-03T10:00:01Z\", \"end\": \"2026-12-03T10:00:00Z\"}}", &w, why) == -1 &&
	    check_says(why, "ends before it starts"));
	CHECK(parse("{\"suggestedWindow\": {\"start\": \"2026-12-03T10:00:00Z\", \"end\": \"2026-12-03T10:00:00Z\"}}", &w, why) == 0);
	CHECK(w.start_s == 1796292000 && w.end_s == 1796292000 && w.explanation_url == NULL);
	CHECK(parse("{\"suggestedWindow\": {\"start\": \"2026-12-03T10:00:00Z\", \"end\": \"2026-12-04T10:00:00Z\"}, "
		    "\"explanationURL\": \"https://ca.test/why\"}", &w, why) == 0);
	CHECK(w.end_s == 1796292000 + 86400);
	CHECK_STR(w.explanation_url, "https://ca.test/why");
	free(w.explanation_url);
	/* not https, not printable, not a string: ignored, the window still counts */
	CHECK(parse("{\"suggestedWindow\": {\"start\": \"2026-12-03T10:00:00Z\", \"end\": \"2026-12-04T10:00:00Z\"}, "
		    "\"explanationURL\": \"http://ca.test/why\"}", &w, why) == 0 && w.explanation_url == NULL);
	CHECK(parse("{\"suggestedWindow\": {\"start\": \"2026-12-03T10:00:00Z\", \"end\": \"2026-12-04T10:00:00Z\"}, "
		    "\"explanationURL\": \"https://ca.test/a b\"}", &w, why) == 0 && w.explanation_url == NULL);
	CHECK(parse("{\"suggestedWindow\": {\"start\": \"2026-12-03T10:00:00Z\", \"end\": \"2026-12-04T10:00:00Z\"}, "
		    "\"explanationURL\": 7}", &w, why) == 0 && w.explanation_url == NULL);
}

/* ---- a CA played through the transport ---- */

struct fake_ca {
	struct loop *loop;
	int inflight, max_inflight;
	int requests;
	int per_cert[64];            /* requests per certificate number (the URL's last digits) */
	int64_t at_ms[64][4];        /* when each of a certificate's first requests came */
	bool refuse;                 /* send fails */
};

struct delivery {
	struct loop_timer timer;
	struct fake_ca *ca;
	struct http_req *req;
};

static const char window_body[] =
    "{\"suggestedWindow\": {\"start\": \"2026-12-03T10:00:00Z\", \"end\": \"2026-12-04T10:00:00Z\"}, "
    "\"explanationURL\": \"https://ca.test/incident\"}";

static void
answer(struct http_req *req, long status, long retry_after, const char *body)
{
	req->result = CURLE_OK;
	req->status = status;
	req->retry_after_s = retry_after;
	if (body != NULL && cf_buf_append(&req->body, body, strlen(body)) != 0)
		req->result = CURLE_OUT_OF_MEMORY;
}

static void
deliver(void *arg)
{
	struct delivery *d = arg;
	d->ca->inflight--;
	d->req->done(d->req, d->req->arg);
	free(d);
}

/*
 * The certificate number is the URL's last digits; its name (the part before them) says how to
 * answer: "ok", "malformed", "unknown", "flaky" (500, then ok), "busy" (429 Retry-After 1, then
 * ok), "slow" (429 Retry-After 3600), "down" (503 always).
 */
static int
ca_send(void *arg, struct http_req *req, cf_err *err)
{
	struct fake_ca *ca = arg;
	const char *name = req->url + strlen(CA);
	int num = atoi(name + strcspn(name, "0123456789"));
	struct delivery *d;

	if (ca->refuse) {
		cf_errf(err, "fake CA: refused");
		return -1;
	}
	if (num < 0 || num >= 64 || (d = calloc(1, sizeof(*d))) == NULL) {
		cf_errf(err, "fake CA: bad URL");
		return -1;
	}
	int n = ca->per_cert[num]++;
	if (n < 4)
		ca->at_ms[num][n] = cf_mono_ms();
	ca->requests++;
	if (strncmp(name, "ok", 2) == 0)
		answer(req, 200, 7200, window_body);
	else if (strncmp(name, "malformed", 9) == 0)
		answer(req, 200, 21600, "{\"suggestedWindow\": ");
	else if (strncmp(name, "unknown", 7) == 0)
		answer(req, 404, -1, "{\"type\": \"urn:ietf:params:acme:error:malformed\"}");
	else if (strncmp(name, "flaky", 5) == 0)
		n == 0 ? answer(req, 500, -1, NULL) : answer(req, 200, -1, window_body);
	else if (strncmp(name, "busy", 4) == 0)
		n == 0 ? answer(req, 429, 1, NULL) : answer(req, 200, -1, window_body);
	else if (strncmp(name, "slow", 4) == 0)
		answer(req, 429, 3600, NULL);
	else
		answer(req, 503, -1, NULL);
	d->ca = ca;
	d->req = req;
	loop_timer_init(&d->timer);
	ca->inflight++;
	if (ca->inflight > ca->max_inflight)
		ca->max_inflight = ca->inflight;
	/* answered on a later loop turn, a few ms on, so that requests overlap */
	if (loop_timer_arm(ca->loop, &d->timer, 5, deliver, d) != 0) {
		ca->inflight--;
		free(d);
		cf_errf(err, "fake CA: out of memory");
		return -1;
	}
	return 0;
}

struct harness {
	struct loop *loop;
	struct fake_ca ca;
	struct http_transport transport;
	struct ari_config cfg;
	char urls[64][96];
	struct ari_check checks[64];
	int progress_calls;
};

static void
on_progress(void *arg, size_t done, size_t failed)
{
	struct harness *h = arg;
	(void)done;
	(void)failed;
	h->progress_calls++;
}

static struct harness *
harness_new(void)
{
	struct harness *h = calloc(1, sizeof(*h));
	cf_err err;

	if (h == NULL || (h->loop = loop_new(&(struct loop_options){ 0 }, &err)) == NULL) {
		fprintf(stderr, "harness: %s\n", h ? err.msg : "out of memory");
		exit(1);
	}
	h->ca.loop = h->loop;
	h->transport.send = ca_send;
	h->transport.arg = &h->ca;
	h->cfg.transport = &h->transport;
	h->cfg.http.timeout_ms = 5000;
	return h;
}

/* Check i asks about certificate kind+i. */
static void
harness_add(struct harness *h, int i, const char *kind)
{
	snprintf(h->urls[i], sizeof(h->urls[i]), CA "%s%d", kind, i);
	memset(&h->checks[i], 0, sizeof(h->checks[i]));
	h->checks[i].url = h->urls[i];
}

static void
harness_free(struct harness *h)
{
	ari_checks_clear(h->checks, 64);
	loop_free(h->loop);
	free(h);
}

static void
test_each_answer(void)
{
	static const char *const kinds[] = { "ok", "malformed", "unknown", "flaky", "busy", "slow", "down" };
	struct harness *h = harness_new();
	cf_err err;

	for (int i = 0; i < 7; i++)
		harness_add(h, i, kinds[i]);
	CHECK(ari_fetch(h->loop, &h->cfg, h->checks, 7, &err) == 0);
	/* ok: the window, the explanation and the Retry-After */
	CHECK(h->checks[0].status == ARI_OK);
	CHECK(h->checks[0].win.start_s == 1796292000 && h->checks[0].win.end_s == 1796292000 + 86400);
	CHECK_STR(h->checks[0].win.explanation_url, "https://ca.test/incident");
	CHECK(h->checks[0].retry_after_s == 7200 && h->ca.per_cert[0] == 1);
	/* malformed: failed once, not retried, its Retry-After kept for the next check */
	CHECK(h->checks[1].status == ARI_FAILED && h->ca.per_cert[1] == 1);
	CHECK(check_says(h->checks[1].error, CA "malformed1: answer is not a JSON object"));
	CHECK(h->checks[1].retry_after_s == 21600);
	/* unknown: the CA does not know it */
	CHECK(h->checks[2].status == ARI_UNKNOWN && h->ca.per_cert[2] == 1);
	CHECK(check_says(h->checks[2].error, "does not know the certificate (404)"));
	/* flaky: 500, then the window */
	CHECK(h->checks[3].status == ARI_OK && h->ca.per_cert[3] == 2);
	/* busy: 429 with Retry-After 1, asked again after that second */
	CHECK(h->checks[4].status == ARI_OK && h->ca.per_cert[4] == 2);
	CHECK(h->ca.at_ms[4][1] - h->ca.at_ms[4][0] >= 1000);
	/* slow: a Retry-After too long to wait for inside the batch ends the check, kept for later */
	CHECK(h->checks[5].status == ARI_FAILED && h->ca.per_cert[5] == 1 && h->checks[5].retry_after_s == 3600);
	CHECK(check_says(h->checks[5].error, "slow5"));
	/* down: three tries, then failed with the status */
	CHECK(h->checks[6].status == ARI_FAILED && h->ca.per_cert[6] == 3);
	CHECK(check_says(h->checks[6].error, "503"));
	CHECK(h->ca.requests == 1 + 1 + 1 + 2 + 2 + 1 + 3);
	harness_free(h);
}

static void
test_transport_refuses(void)
{
	struct harness *h = harness_new();
	cf_err err;

	h->ca.refuse = true;
	harness_add(h, 0, "ok");
	harness_add(h, 1, "ok");
	CHECK(ari_fetch(h->loop, &h->cfg, h->checks, 2, &err) == 0);
	CHECK(h->checks[0].status == ARI_FAILED && check_says(h->checks[0].error, "fake CA: refused"));
	CHECK(h->checks[1].status == ARI_FAILED);
	/* a URL that is not https fails its check alone */
	h->ca.refuse = false;
	snprintf(h->urls[1], sizeof(h->urls[1]), "http://ca.test/renewal-info/ok1");
	CHECK(ari_fetch(h->loop, &h->cfg, h->checks, 2, &err) == 0);
	CHECK(h->checks[0].status == ARI_OK);
	CHECK(h->checks[1].status == ARI_FAILED && check_says(h->checks[1].error, "http://ca.test/renewal-info/ok1"));
	harness_free(h);
}

static void
test_inflight_cap(void)
{
	struct harness *h = harness_new();
	cf_err err;

	for (int i = 0; i < 40; i++)
		harness_add(h, i, "ok");
	h->cfg.max_inflight = 4;
	h->cfg.progress = on_progress;
	h->cfg.progress_arg = h;
	h->cfg.progress_ms = 1;
	CHECK(ari_fetch(h->loop, &h->cfg, h->checks, 40, &err) == 0);
	for (int i = 0; i < 40; i++)
		CHECK(h->checks[i].status == ARI_OK);
	CHECK(h->ca.max_inflight == 4);
	CHECK(h->ca.requests == 40);
	CHECK(h->progress_calls >= 1);
	harness_free(h);
}

static void
test_rate_limit(void)
{
	struct harness *h = harness_new();
	struct limiter *lim;
	cf_err err;
	int64_t t0;

	lim = limiter_local_new("acme:other", 20, 1, &err);
	CHECK(lim != NULL);
	for (int i = 0; i < 10; i++) {
		harness_add(h, i, "ok");
		h->checks[i].limit = lim;
	}
	t0 = cf_mono_ms();
	CHECK(ari_fetch(h->loop, &h->cfg, h->checks, 10, &err) == 0);
	/* 20/s with a burst of 1: the tenth request goes 450 ms after the first */
	CHECK(h->ca.at_ms[9][0] - h->ca.at_ms[0][0] >= 400);
	CHECK(cf_mono_ms() - t0 < 3000);
	for (int i = 1; i < 10; i++)
		CHECK(h->ca.at_ms[i][0] - h->ca.at_ms[i - 1][0] >= 40);
	limiter_free(lim);
	harness_free(h);
}

int
main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	RUN(test_time_parse);
	RUN(test_parse);
	RUN(test_each_answer);
	RUN(test_transport_refuses);
	RUN(test_inflight_cap);
	RUN(test_rate_limit);
	curl_global_cleanup();
	return CHECK_DONE();
}
