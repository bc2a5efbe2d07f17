/*
 * ratelimit.c - thread-safe, non-blocking token buckets with reservations on whole milliseconds,
 * 429 pauses and a reduced rate that recovers, and the "RATE/PERIOD[:BURST]" syntax.
 */
#include "ratelimit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Slack for floating-point error, in tokens: a bucket holding 1 - TOKEN_EPS counts as holding a
 * token. What is granted early is owed: the bucket's content goes that much below zero.
 */
#define TOKEN_EPS 1e-9

/*
 * The bucket as of time at: tokens held then. When requests have been reserved ahead, at is the
 * (future) millisecond of the last reservation and tokens what was left after it; a bucket with
 * reservations pending is thus one whose clock runs ahead of the callers'. Every grant happens at
 * a millisecond a >= at, and the state moves to (a, tokens(a) - 1): the grants are exactly those
 * of a real bucket that served each one at its scheduled time, in order.
 */
struct ratelimit {
	pthread_mutex_t mu;
	char *name;
	double rate;  /* configured tokens per second */
	double burst; /* capacity, in tokens */
	bool started; /* at and tokens are set (by the first call) */
	int64_t at;   /* ms the state refers to; never goes back */
	double tokens; /* held at `at`; >= -TOKEN_EPS */
	double slow;  /* rate factor set by the last penalty, in (0, 1]; 1: none */
	int64_t hold_until; /* slow holds until then, then recovers over RATELIMIT_RECOVER_MS */
};

struct ratelimit *
ratelimit_new(const char *name, double rate_per_s, double burst, cf_err *err)
{
	struct ratelimit *rl = NULL;
	char qname[4 * 64 + 8];

	if (name == NULL || name[0] == '\0') {
		cf_errf(err, "ratelimit_new: no name");
		return NULL;
	}
	cf_quote(qname, sizeof(qname), name, strlen(name), 64);
	/* Written so that NaN fails too. */
	if (!(rate_per_s >= RATELIMIT_MIN_RATE && rate_per_s <= RATELIMIT_MAX_RATE)) {
		cf_errf(err, "ratelimit \"%s\": rate %g per second is outside [%g, %g]", qname,
		    rate_per_s, RATELIMIT_MIN_RATE, RATELIMIT_MAX_RATE);
		return NULL;
	}
	if (!(burst >= 1 && burst <= RATELIMIT_MAX_BURST)) {
		cf_errf(err, "ratelimit \"%s\": burst %g is outside [1, %g]", qname, burst,
		    RATELIMIT_MAX_BURST);
		return NULL;
	}
	if ((rl = calloc(1, sizeof(*rl))) == NULL || (rl->name = strdup(name)) == NULL) {
		cf_errf(err, "ratelimit \"%s\": out of memory", qname);
		free(rl);
		return NULL;
	}
	if (pthread_mutex_init(&rl->mu, NULL) != 0) {
		cf_errf(err, "ratelimit \"%s\": pthread_mutex_init failed", qname);
		free(rl->name);
		free(rl);
		return NULL;
	}
	rl->rate = rate_per_s;
	rl->burst = burst;
	rl->tokens = burst;
	rl->slow = 1;
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl->name);
	free(rl);
}

const char *
ratelimit_name(const struct ratelimit *rl)
{
	return rl != NULL ? rl->name : "(none)";
}

/* The penalty's factor on the rate at t: slow until hold_until, then linearly back to 1. */
static double
factor_at(const struct ratelimit *rl, int64_t t)
{
	double since;

	if (rl->slow >= 1 || t <= rl->hold_until)
		return rl->slow;
	since = (double)(t - rl->hold_until);
	if (since >= RATELIMIT_RECOVER_MS)
		return 1;
	return rl->slow + (1 - rl->slow) * since / RATELIMIT_RECOVER_MS;
}

/* Milliseconds per token at t. */
static double
ms_per_token(const struct ratelimit *rl, int64_t t)
{
	return 1000.0 / (rl->rate * factor_at(rl, t));
}

/* Sets the state on the first call: a full bucket at now. Locked. */
static void
start(struct ratelimit *rl, int64_t now)
{
	if (!rl->started) {
		rl->started = true;
		rl->at = now;
		rl->tokens = rl->burst;
	}
}

/*
 * Tokens held at t >= rl->at, capped at the burst. The refill since at uses the rate in force
 * at t: while a penalty recovers, slightly generous, never above the configured rate.
 */
static double
fill(const struct ratelimit *rl, int64_t t)
{
	double x = rl->tokens + (double)(t - rl->at) / ms_per_token(rl, t);

	return x < rl->burst ? x : rl->burst;
}

/*
 * The first millisecond a >= max(now, at) at which the bucket holds a whole token; *held gets
 * the tokens held then. Locked.
 */
static int64_t
next_grant(const struct ratelimit *rl, int64_t now, double *held)
{
	int64_t t0 = now > rl->at ? now : rl->at, wait;
	double x = fill(rl, t0), per, need;

	if (x >= 1 - TOKEN_EPS) {
		*held = x;
		return t0;
	}
	per = ms_per_token(rl, t0);
	need = (1 - x) * per; /* > 0 and below 1e12 ms: fits an int64_t */
	wait = (int64_t)need;
	if ((double)wait < need)
		wait++; /* ceil(), without libm */
	/* The ceiling of a product that should have been a whole number can overshoot by one. */
	if (wait > 1 && x + (double)(wait - 1) / per >= 1 - TOKEN_EPS)
		wait--;
	if (wait < 1)
		wait = 1;
	*held = x + (double)wait / per;
	if (*held > rl->burst)
		*held = rl->burst;
	return t0 + wait;
}

int64_t
ratelimit_take(struct ratelimit *rl, int64_t now_ms)
{
	int64_t a, rc;
	double held;

	pthread_mutex_lock(&rl->mu);
	start(rl, now_ms);
	a = next_grant(rl, now_ms, &held);
	if (a <= now_ms) {
		/* a == now_ms: no reservation ahead and a token there. */
		rl->at = a;
		rl->tokens = held - 1;
		rc = 0;
	} else {
		rc = a - now_ms;
	}
	pthread_mutex_unlock(&rl->mu);
	return rc;
}

int64_t
ratelimit_reserve(struct ratelimit *rl, int64_t now_ms)
{
	int64_t a;
	double held;

	pthread_mutex_lock(&rl->mu);
	start(rl, now_ms);
	a = next_grant(rl, now_ms, &held);
	rl->at = a;
	rl->tokens = held - 1;
	pthread_mutex_unlock(&rl->mu);
	return a - now_ms;
}

void
ratelimit_penalize(struct ratelimit *rl, int64_t now_ms, int64_t pause_ms, double factor)
{
	int64_t until;
	double f;

	if (pause_ms < 0)
		pause_ms = 0;
	if (pause_ms > RATELIMIT_MAX_PAUSE_MS)
		pause_ms = RATELIMIT_MAX_PAUSE_MS;
	pthread_mutex_lock(&rl->mu);
	start(rl, now_ms);
	until = now_ms + pause_ms;
	if (factor > 0 && factor < 1) {
		f = factor_at(rl, now_ms) * factor;
		rl->slow = f > RATELIMIT_MIN_FACTOR ? f : RATELIMIT_MIN_FACTOR;
		rl->hold_until = until + RATELIMIT_HOLD_MS;
	}
	/*
	 * No burst after a 429: at most one token at the end of the pause (or after the last grant
	 * already made, if that is later), then the rate.
	 */
	if (until > rl->at) {
		rl->tokens = fill(rl, until);
		rl->at = until;
	}
	if (rl->tokens > 1)
		rl->tokens = 1;
	pthread_mutex_unlock(&rl->mu);
}

double
ratelimit_rate(struct ratelimit *rl, int64_t now_ms)
{
	double r;

	pthread_mutex_lock(&rl->mu);
	r = rl->rate * factor_at(rl, now_ms);
	pthread_mutex_unlock(&rl->mu);
	return r;
}

/*
 * Reads a decimal number (digits, optionally '.' and more digits) at *p into *out and moves *p
 * past it; -1 when there is none. By hand, so that the locale's decimal point never matters and
 * no exponent, sign, "inf" or "nan" gets in.
 */
static int
parse_decimal(const char **p, double *out)
{
	const char *s = *p;
	double v = 0, scale = 1;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (*s - '0');
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -1;
		for (; *s >= '0' && *s <= '9'; s++) {
			scale /= 10;
			v += (*s - '0') * scale;
		}
	}
	*p = s;
	*out = v;
	return 0;
}

int
ratelimit_parse(const char *spec, double *rate_per_s, double *burst, cf_err *err)
{
	char q[4 * 64 + 8];
	const char *p;
	double rate, count = 1, b, unit, r;
	bool has_burst = false;

	if (rate_per_s != NULL)
		*rate_per_s = 0;
	if (burst != NULL)
		*burst = 0;
	if (spec == NULL || rate_per_s == NULL || burst == NULL) {
		cf_errf(err, "ratelimit_parse: no rate limit or no output");
		return -1;
	}
	cf_quote(q, sizeof(q), spec, strlen(spec), 64);
	p = spec;
	if (parse_decimal(&p, &rate) != 0) {
		cf_errf(err, "rate limit \"%s\": expected RATE/PERIOD[:BURST] with RATE a number, "
		    "as in 10/s:50", q);
		return -1;
	}
	if (*p != '/') {
		cf_errf(err, "rate limit \"%s\": expected '/' and a period after the rate", q);
		return -1;
	}
	p++;
	if (*p >= '0' && *p <= '9') {
		for (count = 0; *p >= '0' && *p <= '9'; p++)
			if (count <= 1e6) /* stays finite, and out of range */
				count = count * 10 + (*p - '0');
		if (count < 1 || count > 1e6) {
			cf_errf(err, "rate limit \"%s\": the period count must be 1 to 1000000", q);
			return -1;
		}
	}
	switch (*p) {
	case 's':
		unit = 1;
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	default:
		cf_errf(err, "rate limit \"%s\": the period needs a unit of s, m, h or d", q);
		return -1;
	}
	p++;
	r = rate / (count * unit);
	b = r > 1 ? r : 1;
	if (*p == ':') {
		p++;
		has_burst = true;
		if (parse_decimal(&p, &b) != 0) {
			cf_errf(err, "rate limit \"%s\": expected a number for the burst after ':'",
			    q);
			return -1;
		}
	}
	if (*p != '\0') {
		cf_errf(err, "rate limit \"%s\": unexpected text after the %s", q,
		    has_burst ? "burst" : "period");
		return -1;
	}
	if (!(r >= RATELIMIT_MIN_RATE && r <= RATELIMIT_MAX_RATE)) {
		cf_errf(err, "rate limit \"%s\": %g per second is outside [%g, %g]", q, r,
		    RATELIMIT_MIN_RATE, RATELIMIT_MAX_RATE);
		return -1;
	}
	if (!(b >= 1 && b <= RATELIMIT_MAX_BURST)) {
		cf_errf(err, "rate limit \"%s\": burst %g is outside [1, %g]", q, b,
		    RATELIMIT_MAX_BURST);
		return -1;
	}
	*rate_per_s = r;
	*burst = b;
	return 0;
}
