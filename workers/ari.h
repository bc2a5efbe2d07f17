/*
 * ari.h - ACME Renewal Information (RFC 9773) for many certificates at once: GET renewalInfo for
 * each on one event loop (the libcurl multi interface, or a stand-in transport), a cap on the
 * requests in flight, each CA's rate limit, Retry-After honoured. Every failure belongs to its
 * certificate; none ends the batch.
 */
#ifndef CF_ARI_H
#define CF_ARI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"
#include "http.h"
#include "limiter.h"
#include "loop.h"

/* The longest Retry-After waited for inside one batch (429, 5xx); longer ones end the check. */
#define ARI_RETRY_INLINE_MAX_S 30L

enum ari_status {
	ARI_PENDING = 0,
	ARI_OK,                    /* a usable window in win */
	ARI_UNKNOWN,               /* 404: the CA does not know the certificate */
	ARI_FAILED,                /* transport, HTTP status, or an answer not usable; error says which */
};

/* A suggested window: start <= end, unix seconds. */
struct ari_window {
	int64_t start_s;
	int64_t end_s;
	char *explanation_url;     /* an https URL, or NULL (absent, or not https: ignored) */
};

/* One certificate to ask about. The caller fills url and limit and zeroes the rest. */
struct ari_check {
	const char *url;           /* renewalInfo URL "/" CertID; the caller's */
	struct limiter *limit;     /* the CA's limit for such requests ("other"); NULL = none */
	/* the answer */
	enum ari_status status;
	struct ari_window win;     /* ARI_OK */
	long retry_after_s;        /* the last answer's Retry-After, -1 when it had none */
	long http_status;          /* the last answer's status, 0 when none came */
	char error[256];           /* ARI_UNKNOWN, ARI_FAILED: why, naming the URL */
	/* the fetcher's */
	struct ari_batch *batch;
	int tries;
	struct limiter_wait wait;
	struct loop_timer timer;
};

struct ari_config {
	struct http_settings http;
	const struct http_transport *transport; /* NULL = the loop's libcurl multi handle */
	int max_inflight;          /* requests at once; 0 = 64 */
	int max_tries;             /* per check, for transport errors, 429 and 5xx; 0 = 3 */
	/* called about every progress_ms (0 = never) with the checks ended so far and those failed */
	void (*progress)(void *arg, size_t done, size_t failed);
	void *progress_arg;
	int64_t progress_ms;
};

/*
 * Asks about checks[0..n) on loop and returns once every one has ended (ARI_OK, ARI_UNKNOWN or
 * ARI_FAILED); only the loop's own failure returns -1 (err set, unanswered checks ARI_FAILED).
 * The caller's thread runs the loop meanwhile; nothing inside it blocks.
 */
int ari_fetch(struct loop *loop, const struct ari_config *cfg, struct ari_check *checks, size_t n, cf_err *err) CF_MUST;

/* Frees what the answers hold (explanation URLs); the array stays the caller's. */
void ari_checks_clear(struct ari_check *checks, size_t n);

/*
 * Reads a renewalInfo answer: an object whose suggestedWindow has start and end (RFC 3339), with
 * end >= start, and an optional explanationURL (kept only when https). 0, or -1 with why.
 */
int ari_parse(const char *body, size_t len, struct ari_window *w, char *why, size_t whylen) CF_MUST;

/* An RFC 3339 date-time ("2026-12-03T10:00:00Z", fractions and offsets too) as unix seconds; -1 when not one. */
int ari_time_parse(const char *s, int64_t *out) CF_MUST;

#endif
