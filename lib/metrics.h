/*
 * metrics.h - counters, gauges and histograms with bounded label sets, and their Prometheus text
 * exposition. Updates are lock-free atomics, so event-loop threads record on their hot path; only
 * the first use of a new label combination takes a lock.
 */
#ifndef CF_METRICS_H
#define CF_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"

#define METRICS_MAX_LABELS 2
#define METRICS_MAX_SERIES 64   /* per family; later label combinations share one "other" series */
#define METRICS_MAX_BUCKETS 16
#define METRICS_VALUE_MAX 64    /* a label value's bytes, longer ones are cut */

enum metrics_kind {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
	METRICS_AGE,                 /* a gauge holding a cf_mono_ms() time, shown as seconds since (0: none) */
};

struct metrics_series {
	char values[METRICS_MAX_LABELS][METRICS_VALUE_MAX];
	_Atomic double value;        /* counter or gauge value, histogram sum */
	_Atomic int64_t stamp_ms;    /* METRICS_AGE */
	_Atomic uint64_t count;      /* histogram observations */
	_Atomic uint64_t buckets[METRICS_MAX_BUCKETS]; /* per bucket, not cumulative */
};

struct metrics_family {
	const char *name;
	const char *help;
	enum metrics_kind kind;
	const char *labels[METRICS_MAX_LABELS]; /* names; NULL past the last */
	const double *bounds;        /* histogram upper bounds, ascending, without +Inf */
	size_t nbounds;              /* at most METRICS_MAX_BUCKETS */
	pthread_mutex_t lock;        /* taken only to add a series */
	_Atomic size_t nseries;      /* published series (release/acquire) */
	struct metrics_series series[METRICS_MAX_SERIES];
	struct metrics_series other; /* every label "other", once the family is full */
	_Atomic int other_used;
};

/* A static family's initialiser: METRICS_FAMILY("certfleet_x_total", "Help.", METRICS_COUNTER, ...). */
#define METRICS_FAMILY(n, h, k, l0, l1, b, nb) \
	{ .name = (n), .help = (h), .kind = (k), .labels = { (l0), (l1) }, .bounds = (b), .nbounds = (nb), \
	  .lock = PTHREAD_MUTEX_INITIALIZER }

/*
 * The series of f for these label values (NULL for labels the family does not have). Never NULL:
 * past METRICS_MAX_SERIES combinations every new one shares the "other" series.
 */
struct metrics_series *metrics_series(struct metrics_family *f, const char *v0, const char *v1);

void metrics_add(struct metrics_series *s, double d);     /* counter or gauge */
void metrics_set(struct metrics_series *s, double v);     /* gauge */
void metrics_stamp(struct metrics_series *s, int64_t mono_ms); /* METRICS_AGE; 0 clears */
void metrics_observe(struct metrics_family *f, struct metrics_series *s, double v); /* histogram */

/* Sets a histogram series from counts made elsewhere: per_bucket[f->nbounds] (not cumulative), count, sum. */
void metrics_histogram_set(struct metrics_family *f, struct metrics_series *s, const uint64_t *per_bucket,
    uint64_t count, double sum);

/* Clears every series' value of f (the series stay): for gauges refreshed as a whole set. */
void metrics_zero(struct metrics_family *f);

/* Appends the text exposition (format 0.0.4) of n families to out; -1 when out of memory. */
int metrics_render(struct metrics_family *const *fams, size_t n, cf_buf *out) CF_MUST;

/* Appends one label value or HELP text escaped for the exposition format. */
int metrics_escape(cf_buf *out, const char *s, int label_value) CF_MUST;

/* ---- the series of `certfleet run`, recorded by the layer where each event happens ---- */

extern struct metrics_family metrics_orders;          /* {outcome} */
extern struct metrics_family metrics_order_seconds;   /* histogram */
extern struct metrics_family metrics_ca_requests;     /* {endpoint, status} */
extern struct metrics_family metrics_provider_requests; /* {account, status} */
extern struct metrics_family metrics_limit_wait;      /* {limiter} */
extern struct metrics_family metrics_in_flight;
extern struct metrics_family metrics_queue_jobs;      /* {state} */
extern struct metrics_family metrics_writer_lag;      /* METRICS_AGE */
extern struct metrics_family metrics_loop_lag;        /* histogram */

/* Appends the run's families to out. */
int metrics_render_run(cf_buf *out) CF_MUST;

/* "2xx", "4xx", "429", "5xx" or "error" (no answer): a bounded label for an HTTP status. */
const char *metrics_status_class(long status);

#endif
