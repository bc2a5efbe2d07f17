/* metrics.c - the metrics registry, its Prometheus text exposition and the run's own series. */
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t
family_nlabels(const struct metrics_family *f)
{
	size_t n = 0;

	while (n < METRICS_MAX_LABELS && f->labels[n])
		n++;
	return n;
}

static bool
series_matches(const struct metrics_series *s, size_t nl, const char *const *v)
{
	for (size_t i = 0; i < nl; i++)
		if (strncmp(s->values[i], v[i] ? v[i] : "", METRICS_VALUE_MAX - 1) != 0)
			return false;
	return true;
}

struct metrics_series *
metrics_series(struct metrics_family *f, const char *v0, const char *v1)
{
	const char *v[METRICS_MAX_LABELS] = { v0, v1 };
	size_t nl = family_nlabels(f);
	size_t n = atomic_load_explicit(&f->nseries, memory_order_acquire);
	struct metrics_series *s = NULL;

	/* the common case: the series exists, found without a lock (families hold a handful) */
	for (size_t i = 0; i < n; i++)
		if (series_matches(&f->series[i], nl, v))
			return &f->series[i];
	pthread_mutex_lock(&f->lock);
	n = atomic_load_explicit(&f->nseries, memory_order_relaxed);
	for (size_t i = 0; i < n && s == NULL; i++)
		if (series_matches(&f->series[i], nl, v))
			s = &f->series[i];
	if (s == NULL && n < METRICS_MAX_SERIES) {
		s = &f->series[n];
		for (size_t i = 0; i < nl; i++)
			snprintf(s->values[i], METRICS_VALUE_MAX, "%s", v[i] ? v[i] : "");
		atomic_store_explicit(&f->nseries, n + 1, memory_order_release);
	} else if (s == NULL) {
		s = &f->other;
		/* labelled once, before a render can see it */
		if (!atomic_load_explicit(&f->other_used, memory_order_relaxed)) {
			for (size_t i = 0; i < nl; i++)
				snprintf(s->values[i], METRICS_VALUE_MAX, "other");
			atomic_store_explicit(&f->other_used, 1, memory_order_release);
		}
	}
	pthread_mutex_unlock(&f->lock);
	return s;
}

/* An atomic add on a double: a compare-and-swap loop (no libatomic, no floating-point exceptions). */
static void
atomic_add_double(_Atomic double *p, double d)
{
	double old = atomic_load_explicit(p, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(p, &old, old + d, memory_order_relaxed, memory_order_relaxed))
		;
}

void
metrics_add(struct metrics_series *s, double d)
{
	atomic_add_double(&s->value, d);
}

void
metrics_set(struct metrics_series *s, double v)
{
	atomic_store_explicit(&s->value, v, memory_order_relaxed);
}

void
metrics_stamp(struct metrics_series *s, int64_t mono_ms)
{
	atomic_store_explicit(&s->stamp_ms, mono_ms, memory_order_relaxed);
}

void
metrics_observe(struct metrics_family *f, struct metrics_series *s, double v)
{
	size_t b = 0;

	while (b < f->nbounds && v > f->bounds[b])
		b++;
	if (b < f->nbounds)
		atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
	atomic_add_double(&s->value, v);
}

void
metrics_histogram_set(struct metrics_family *f, struct metrics_series *s, const uint64_t *per_bucket, uint64_t count,
    double sum)
{
	for (size_t b = 0; b < f->nbounds; b++)
		atomic_store_explicit(&s->buckets[b], per_bucket[b], memory_order_relaxed);
	atomic_store_explicit(&s->count, count, memory_order_relaxed);
	atomic_store_explicit(&s->value, sum, memory_order_relaxed);
}

void
metrics_zero(struct metrics_family *f)
{
	size_t n = atomic_load_explicit(&f->nseries, memory_order_acquire);

	for (size_t i = 0; i < n; i++)
		metrics_set(&f->series[i], 0);
	metrics_set(&f->other, 0);
}

int
metrics_escape(cf_buf *out, const char *s, int label_value)
{
	for (; *s; s++) {
		const char *e = NULL;
		if (*s == '\\')
			e = "\\\\";
		else if (*s == '\n')
			e = "\\n";
		else if (*s == '"' && label_value)
			e = "\\\"";
		if (e ? cf_buf_append(out, e, 2) != 0 : cf_buf_append(out, s, 1) != 0)
			return -1;
	}
	return 0;
}

/* The shortest of %.15g/%.17g that reads back as v: 0.005, not 0.0050000000000000001. */
static void
format_number(char *dst, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(dst, len, "NaN");
	} else if (isinf(v)) {
		snprintf(dst, len, v > 0 ? "+Inf" : "-Inf");
	} else {
		snprintf(dst, len, "%.15g", v);
		if (strtod(dst, NULL) != v)
			snprintf(dst, len, "%.17g", v);
	}
}

static int
put_number(cf_buf *out, double v)
{
	char num[40];

	format_number(num, sizeof(num), v);
	return cf_buf_printf(out, "%s", num);
}

/* name{l0="v0",l1="v1",extra="x"} value\n; extra may be NULL */
static int
put_sample(cf_buf *out, const struct metrics_family *f, const char *suffix, const struct metrics_series *s,
    const char *extra_name, const char *extra_value, double v)
{
	size_t nl = family_nlabels(f);
	bool any = nl > 0 || extra_name;

	if (cf_buf_printf(out, "%s%s%s", f->name, suffix, any ? "{" : "") != 0)
		return -1;
	for (size_t i = 0; i < nl; i++)
		if (cf_buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]) != 0 ||
		    metrics_escape(out, s->values[i], 1) != 0 || cf_buf_append(out, "\"", 1) != 0)
			return -1;
	if (extra_name && (cf_buf_printf(out, "%s%s=\"%s\"", nl ? "," : "", extra_name, extra_value) != 0))
		return -1;
	if (cf_buf_printf(out, "%s ", any ? "}" : "") != 0 || put_number(out, v) != 0)
		return -1;
	return cf_buf_append(out, "\n", 1);
}

static int
render_series(cf_buf *out, const struct metrics_family *f, const struct metrics_series *s, int64_t now_ms)
{
	switch (f->kind) {
	case METRICS_COUNTER:
		return put_sample(out, f, "", s, NULL, NULL, atomic_load(&s->value));
	case METRICS_GAUGE:
		return put_sample(out, f, "", s, NULL, NULL, atomic_load(&s->value));
	case METRICS_AGE: {
		int64_t t = atomic_load(&s->stamp_ms);
		return put_sample(out, f, "", s, NULL, NULL, t > 0 && now_ms > t ? (now_ms - t) / 1000.0 : 0.0);
	}
	case METRICS_HISTOGRAM: {
		uint64_t cum = 0;
		char le[64];
		/* count first: a bucket read later may only be larger, so +Inf >= every bucket holds */
		for (size_t b = 0; b < f->nbounds; b++) {
			cum += atomic_load(&s->buckets[b]);
			format_number(le, sizeof(le), f->bounds[b]);
			if (put_sample(out, f, "_bucket", s, "le", le, (double)cum) != 0)
				return -1;
		}
		uint64_t count = atomic_load(&s->count);
		if (count < cum)
			count = cum;
		if (put_sample(out, f, "_bucket", s, "le", "+Inf", (double)count) != 0 ||
		    put_sample(out, f, "_sum", s, NULL, NULL, atomic_load(&s->value)) != 0 ||
		    put_sample(out, f, "_count", s, NULL, NULL, (double)count) != 0)
			return -1;
		return 0;
	}
	}
	return 0;
}

static const char *
kind_name(enum metrics_kind k)
{
	switch (k) {
	case METRICS_COUNTER:
		return "counter";
	case METRICS_HISTOGRAM:
		return "histogram";
	default:
		return "gauge";
	}
}

int
metrics_render(struct metrics_family *const *fams, size_t n, cf_buf *out)
{
	int64_t now = cf_mono_ms();

	for (size_t i = 0; i < n; i++) {
		struct metrics_family *f = fams[i];
		size_t ns = atomic_load_explicit(&f->nseries, memory_order_acquire);

		if (cf_buf_printf(out, "# HELP %s ", f->name) != 0 || metrics_escape(out, f->help, 0) != 0 ||
		    cf_buf_printf(out, "\n# TYPE %s %s\n", f->name, kind_name(f->kind)) != 0)
			return -1;
		/* a family without labels has one series from the start, so it shows even before use */
		if (ns == 0 && family_nlabels(f) == 0) {
			(void)metrics_series(f, NULL, NULL);
			ns = 1;
		}
		for (size_t j = 0; j < ns; j++)
			if (render_series(out, f, &f->series[j], now) != 0)
				return -1;
		if (atomic_load_explicit(&f->other_used, memory_order_acquire) && render_series(out, f, &f->other, now) != 0)
			return -1;
	}
	return 0;
}

const char *
metrics_status_class(long status)
{
	if (status == 429)
		return "429";
	if (status >= 200 && status < 300)
		return "2xx";
	if (status >= 300 && status < 400)
		return "3xx";
	if (status >= 400 && status < 500)
		return "4xx";
	if (status >= 500 && status < 600)
		return "5xx";
	return "error";
}

/* ---- the run's series ---- */

static const double order_bounds[] = { 1, 2, 5, 10, 20, 30, 60, 120, 300, 600 };
static const double lag_bounds[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1 };
#define NB(a) (sizeof(a) / sizeof((a)[0]))

struct metrics_family metrics_orders = METRICS_FAMILY("certfleet_orders_total",
    "Orders that ended, by outcome (issued, failed, retry, cancelled).", METRICS_COUNTER, "outcome", NULL, NULL, 0);
struct metrics_family metrics_order_seconds = METRICS_FAMILY("certfleet_order_duration_seconds",
    "Time from an order's start to its end.", METRICS_HISTOGRAM, NULL, NULL, order_bounds, NB(order_bounds));
struct metrics_family metrics_ca_requests = METRICS_FAMILY("certfleet_ca_requests_total",
    "Signed requests answered by the CA, by endpoint and HTTP status class.", METRICS_COUNTER, "endpoint", "status",
    NULL, 0);
struct metrics_family metrics_provider_requests = METRICS_FAMILY("certfleet_provider_requests_total",
    "DNS provider requests, by provider account and status class (ok or error for non-HTTP providers).",
    METRICS_COUNTER, "account", "status", NULL, 0);
struct metrics_family metrics_limit_wait = METRICS_FAMILY("certfleet_ratelimit_wait_seconds_total",
    "Time requests waited for a turn, by rate limit (provider:account, or acme:endpoint for the CA).",
    METRICS_COUNTER, "limiter", NULL, NULL, 0);
struct metrics_family metrics_in_flight = METRICS_FAMILY("certfleet_orders_in_flight",
    "Orders started and not yet ended.", METRICS_GAUGE, NULL, NULL, NULL, 0);
struct metrics_family metrics_queue_jobs = METRICS_FAMILY("certfleet_queue_jobs",
    "Jobs in the queue by state, as the claimer last counted them.", METRICS_GAUGE, "state", NULL, NULL, 0);
struct metrics_family metrics_writer_lag = METRICS_FAMILY("certfleet_writer_lag_seconds",
    "Age of the oldest worker message not yet committed to PostgreSQL (0: none waiting).", METRICS_AGE, NULL, NULL,
    NULL, 0);
struct metrics_family metrics_loop_lag = METRICS_FAMILY("certfleet_event_loop_lag_seconds",
    "How late event-loop timers fired.", METRICS_HISTOGRAM, NULL, NULL, lag_bounds, NB(lag_bounds));

int
metrics_render_run(cf_buf *out)
{
	struct metrics_family *const fams[] = {
		&metrics_orders, &metrics_order_seconds, &metrics_ca_requests, &metrics_provider_requests,
		&metrics_limit_wait, &metrics_in_flight, &metrics_queue_jobs, &metrics_writer_lag, &metrics_loop_lag,
	};

	return metrics_render(fams, NB(fams), out);
}
