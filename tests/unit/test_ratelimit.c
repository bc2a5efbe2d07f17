/*
 * test_ratelimit.c - unit tests of lib/ratelimit.c: rejections first, then the bucket on
 * a simulated clock (burst, rate, reservations, penalties) and four threads racing for it. No
 * test sleeps or reads a clock: every time is passed in.
 */
#include <math.h> /* NAN, INFINITY: no libm function is called */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ratelimit.h"

static double
absd(double x)
{
	return x < 0 ? -x : x;
}

static bool
near(double a, double b)
{
	return absd(a - b) <= 1e-12 * (absd(a) > absd(b) ? absd(a) : absd(b)) + 1e-15;
}

/* True when ratelimit_parse(spec) fails, zeroes both outputs and names spec and needle. */
static bool
parse_rejects(const char *spec, const char *needle)
{
	double rate = -1, burst = -1;
	cf_err e = { "" };
	char quoted[300];

	if (ratelimit_parse(spec, &rate, &burst, &e) != -1 || rate != 0 || burst != 0) {
		fprintf(stderr, "  \"%s\" accepted (%g, %g)\n", spec, rate, burst);
		return false;
	}
	snprintf(quoted, sizeof(quoted), "\"%s\"", spec);
	return check_says(e.msg, quoted) && check_says(e.msg, needle);
}

static bool
parse_gives(const char *spec, double want_rate, double want_burst)
{
	double rate = -1, burst = -1;
	cf_err e = { "" };

	if (ratelimit_parse(spec, &rate, &burst, &e) != 0 || !near(rate, want_rate) ||
	    !near(burst, want_burst)) {
		fprintf(stderr, "  \"%s\" gave %.17g, %.17g (%s), want %.17g, %.17g\n", spec, rate, burst,
		    e.msg, want_rate, want_burst);
		return false;
	}
	return true;
}

static void
test_new_errors(void)
{
	struct ratelimit *rl;
	cf_err e = { "" };

	CHECK(ratelimit_new(NULL, 1, 1, &e) == NULL && check_says(e.msg, "no name"));
	CHECK(ratelimit_new("", 1, 1, &e) == NULL && check_says(e.msg, "no name"));
	CHECK(ratelimit_new("route53:prod", 0, 1, &e) == NULL);
	CHECK(check_says(e.msg, "ratelimit \"route53:prod\": rate 0 per second is outside"));
	CHECK(ratelimit_new("r", -1, 1, &e) == NULL && check_says(e.msg, "rate -1"));
	CHECK(ratelimit_new("r", NAN, 1, &e) == NULL && check_says(e.msg, "rate nan"));
	CHECK(ratelimit_new("r", INFINITY, 1, &e) == NULL && check_says(e.msg, "rate inf"));
	CHECK(ratelimit_new("r", 2e6, 1, &e) == NULL && check_says(e.msg, "outside"));
	CHECK(ratelimit_new("r", 1e-7, 1, &e) == NULL && check_says(e.msg, "outside"));
	CHECK(ratelimit_new("r", 1, 0, &e) == NULL && check_says(e.msg, "burst 0 is outside"));
	CHECK(ratelimit_new("r", 1, 0.5, &e) == NULL && check_says(e.msg, "burst 0.5"));
	CHECK(ratelimit_new("r", 1, NAN, &e) == NULL && check_says(e.msg, "burst nan"));
	CHECK(ratelimit_new("r", 1, 2e6, &e) == NULL && check_says(e.msg, "burst"));
	CHECK(ratelimit_new("bad\nname", 0, 1, &e) == NULL && check_says(e.msg, "bad\\nname"));
	CHECK(ratelimit_new("r", 0, 1, NULL) == NULL); /* no err: still refused */
	ratelimit_free(NULL);

	rl = ratelimit_new("acme:ca.example", 1e-6, 1, &e);
	CHECK(rl != NULL);
	CHECK_STR(ratelimit_name(rl), "acme:ca.example");
	ratelimit_free(rl);
	CHECK((rl = ratelimit_new("max", 1e6, 1e6, &e)) != NULL);
	ratelimit_free(rl);
}

static void
test_parse_errors(void)
{
	double rate = -1, burst = -1;
	cf_err e = { "" };

	CHECK(ratelimit_parse(NULL, &rate, &burst, &e) == -1 && rate == 0 && burst == 0);
	CHECK(check_says(e.msg, "no rate limit"));
	CHECK(ratelimit_parse("10/s", NULL, &burst, &e) == -1 && burst == 0);
	CHECK(ratelimit_parse("10/s", &rate, NULL, &e) == -1 && rate == 0);

	CHECK(parse_rejects("", "RATE/PERIOD[:BURST]"));
	CHECK(parse_rejects("abc", "RATE/PERIOD[:BURST]"));
	CHECK(parse_rejects(" 10/s", "RATE/PERIOD[:BURST]"));
	CHECK(parse_rejects("-1/s", "RATE/PERIOD[:BURST]"));
	CHECK(parse_rejects("+1/s", "RATE/PERIOD[:BURST]"));
	CHECK(parse_rejects(".5/s", "RATE/PERIOD[:BURST]"));
	CHECK(parse_rejects("/s", "RATE/PERIOD[:BURST]"));
	CHECK(parse_rejects("inf/s", "RATE/PERIOD[:BURST]"));
	CHECK(parse_rejects("nan/s", "RATE/PERIOD[:BURST]"));
	CHECK(parse_rejects("10", "expected '/'"));
	CHECK(parse_rejects("10.", "RATE/PERIOD[:BURST]"));
	CHECK(parse_rejects("1.5.2/s", "expected '/'"));
	CHECK(parse_rejects("1e3/s", "expected '/'"));
	CHECK(parse_rejects("10 /s", "expected '/'"));
	CHECK(parse_rejects("10/", "unit of s, m, h or d"));
	CHECK(parse_rejects("10/x", "unit of s, m, h or d"));
	CHECK(parse_rejects("10/5", "unit of s, m, h or d"));
	CHECK(parse_rejects("10//s", "unit of s, m, h or d"));
	CHECK(parse_rejects("10/S", "unit of s, m, h or d"));
	CHECK(parse_rejects("10/0s", "period count must be 1 to 1000000"));
	CHECK(parse_rejects("10/1000001s", "period count"));
	CHECK(parse_rejects("10/99999999999999999999999s", "period count"));
	CHECK(parse_rejects("10/sec", "unexpected text after the period"));
	CHECK(parse_rejects("10/s ", "unexpected text after the period"));
	CHECK(parse_rejects("10/s:", "number for the burst"));
	CHECK(parse_rejects("10/s:x", "number for the burst"));
	CHECK(parse_rejects("10/s:-5", "number for the burst"));
	CHECK(parse_rejects("10/s:50x", "unexpected text after the burst"));
	CHECK(parse_rejects("10/s:50:3", "unexpected text after the burst"));
	CHECK(parse_rejects("10/s:0", "burst 0 is outside [1,"));
	CHECK(parse_rejects("10/s:0.5", "burst 0.5 is outside"));
	CHECK(parse_rejects("10/s:2000000", "burst 2e+06 is outside"));
	CHECK(parse_rejects("0/s", "0 per second is outside"));
	CHECK(parse_rejects("1/100000d", "per second is outside"));
	CHECK(parse_rejects("2000000/s", "2e+06 per second is outside"));
	CHECK(parse_rejects("99999999999999999999999999/s", "per second is outside"));

	/* A long spec is cut in the message; a control character is escaped. */
	CHECK(ratelimit_parse("10/s:\n", &rate, &burst, &e) == -1 && check_says(e.msg, "\"10/s:\\n\""));
}

static void
test_parse_valid(void)
{
	CHECK(parse_gives("10/s:50", 10, 50));
	CHECK(parse_gives("10/s", 10, 10));
	CHECK(parse_gives("1200/5m", 4, 4));
	CHECK(parse_gives("5000/h:250", 5000.0 / 3600, 250));
	CHECK(parse_gives("5000/h", 5000.0 / 3600, 1.3888888888888888));
	CHECK(parse_gives("0.5/s", 0.5, 1));
	CHECK(parse_gives("3/10s:1", 0.3, 1));
	CHECK(parse_gives("1/d", 1.0 / 86400, 1));
	CHECK(parse_gives("100/1m:2.5", 100.0 / 60, 2.5));
	CHECK(parse_gives("007/s:01", 7, 1));
	CHECK(parse_gives("1000000/s:1000000", 1e6, 1e6));
}

/* A bucket for the tests below; the test fails (and the caller gets NULL) when it cannot be made. */
static struct ratelimit *
bucket(double rate, double burst)
{
	cf_err e = { "" };
	struct ratelimit *rl = ratelimit_new("test", rate, burst, &e);

	if (rl == NULL)
		fprintf(stderr, "  ratelimit_new: %s\n", e.msg);
	return rl;
}

static void
test_take_burst_then_rate(void)
{
	struct ratelimit *rl = bucket(2, 3); /* one token every 500 ms, three at most */

	if (rl == NULL) {
		CHECK(rl != NULL);
		return;
	}
	/* A new bucket is full: the burst goes at once, then one token per 500 ms. */
	CHECK(ratelimit_take(rl, 1000) == 0);
	CHECK(ratelimit_take(rl, 1000) == 0);
	CHECK(ratelimit_take(rl, 1000) == 0);
	CHECK(ratelimit_take(rl, 1000) == 500);
	CHECK(ratelimit_take(rl, 1000) == 500); /* asking again takes nothing */
	CHECK(ratelimit_take(rl, 1250) == 250);
	CHECK(ratelimit_take(rl, 1499) == 1);
	CHECK(ratelimit_take(rl, 1500) == 0);
	CHECK(ratelimit_take(rl, 1500) == 500);
	CHECK(ratelimit_take(rl, 2999) == 0); /* 1499 ms: two whole tokens and a bit */
	CHECK(ratelimit_take(rl, 2999) == 0);
	CHECK(ratelimit_take(rl, 2999) == 1);
	/* A long idle time fills the bucket to the burst, no more. */
	CHECK(ratelimit_take(rl, 1000000) == 0);
	CHECK(ratelimit_take(rl, 1000000) == 0);
	CHECK(ratelimit_take(rl, 1000000) == 0);
	CHECK(ratelimit_take(rl, 1000000) == 500);
	ratelimit_free(rl);

	/* A rate whose interval is not a whole number of ms: grants on the first whole ms after. */
	rl = bucket(3, 1);
	CHECK(rl != NULL);
	if (rl != NULL) {
		CHECK(ratelimit_take(rl, 0) == 0);
		CHECK(ratelimit_take(rl, 0) == 334); /* 333.3 ms */
		CHECK(ratelimit_take(rl, 334) == 0);
		/* Full (one token) since 333.3 ms: what flowed in after that was lost, as in a real bucket. */
		CHECK(ratelimit_take(rl, 334) == 334);
		CHECK(ratelimit_take(rl, 667) == 1);
		CHECK(ratelimit_take(rl, 668) == 0);
		ratelimit_free(rl);
	}
	/* A rate that divides a second: spacing exactly 100 ms, not 101 by rounding. */
	rl = bucket(10, 1);
	CHECK(rl != NULL);
	if (rl != NULL) {
		CHECK(ratelimit_take(rl, 5) == 0);
		CHECK(ratelimit_take(rl, 5) == 100);
		CHECK(ratelimit_take(rl, 105) == 0);
		CHECK(ratelimit_take(rl, 105) == 100);
		ratelimit_free(rl);
	}
}

static void
test_reserve_fairness(void)
{
	struct ratelimit *rl = bucket(10, 5);
	int64_t d;
	int i;

	if (rl == NULL) {
		CHECK(rl != NULL);
		return;
	}
	/* The burst goes now; the next 20 callers are spaced 100 ms apart, in the order they came. */
	for (i = 0; i < 5; i++)
		CHECK(ratelimit_reserve(rl, 5000) == 0);
	for (i = 1; i <= 20; i++) {
		d = ratelimit_reserve(rl, 5000);
		if (d != 100 * i) {
			fprintf(stderr, "  caller %d: delay %lld, want %d\n", i, (long long)d, 100 * i);
			CHECK(d == 100 * i);
		}
	}
	/* take does not jump the queue: the next token is after the last reservation. */
	CHECK(ratelimit_take(rl, 5000) == 2100);
	CHECK(ratelimit_take(rl, 6000) == 1100);
	/* A caller a little later waits less by as much. */
	CHECK(ratelimit_reserve(rl, 5050) == 2050); /* at 7100 */
	/* A caller whose clock is behind the bucket's is scheduled after the queue all the same. */
	CHECK(ratelimit_reserve(rl, 4000) == 3200); /* at 7200 */
	/* Once the queue has drained, idle time refills the bucket again. */
	CHECK(ratelimit_take(rl, 7200) == 100);
	CHECK(ratelimit_take(rl, 7300) == 0);
	for (i = 0; i < 5; i++)
		CHECK(ratelimit_reserve(rl, 60000) == 0);
	CHECK(ratelimit_reserve(rl, 60000) == 100);
	ratelimit_free(rl);
}

static void
test_penalize_pause(void)
{
	struct ratelimit *rl = bucket(10, 5);

	if (rl == NULL) {
		CHECK(rl != NULL);
		return;
	}
	CHECK(ratelimit_take(rl, 0) == 0);
	CHECK(ratelimit_take(rl, 0) == 0); /* three tokens left */
	ratelimit_penalize(rl, 100, 1000, 1.0);
	/* Nothing before 1100, then one token only (the burst is gone), then the rate. */
	CHECK(ratelimit_take(rl, 100) == 1000);
	CHECK(ratelimit_take(rl, 1099) == 1);
	CHECK(ratelimit_reserve(rl, 500) == 600);
	CHECK(ratelimit_reserve(rl, 500) == 700);
	CHECK(ratelimit_take(rl, 1100) == 200); /* behind the two reservations, at 1300 */
	CHECK(ratelimit_rate(rl, 1100) == 10); /* factor 1: the rate is untouched */
	ratelimit_free(rl);

	/* Reservations already granted stand; the burst after them is gone. */
	rl = bucket(10, 5);
	CHECK(rl != NULL);
	if (rl != NULL) {
		for (int i = 0; i < 5; i++)
			CHECK(ratelimit_reserve(rl, 0) == 0);
		CHECK(ratelimit_reserve(rl, 0) == 100);
		CHECK(ratelimit_reserve(rl, 0) == 200);
		ratelimit_penalize(rl, 0, 50, 1.0); /* ends before the queue does */
		CHECK(ratelimit_reserve(rl, 0) == 300);
		/* Long after: the bucket refilled, and a new penalty empties it to one token. */
		ratelimit_penalize(rl, 100000, 0, 1.0);
		CHECK(ratelimit_take(rl, 100000) == 0);
		CHECK(ratelimit_take(rl, 100000) == 100);
		/* A negative pause counts as none; an absurd one is cut to a day. */
		ratelimit_penalize(rl, 200000, -5000, 1.0);
		CHECK(ratelimit_take(rl, 200000) == 0);
		ratelimit_penalize(rl, 300000, INT64_MAX, 1.0);
		CHECK(ratelimit_take(rl, 300000) == RATELIMIT_MAX_PAUSE_MS);
		ratelimit_free(rl);
	}
}

static void
test_penalize_factor(void)
{
	struct ratelimit *rl = bucket(10, 1);
	const double bad[] = { 0, -1, 1, 1.5, NAN, INFINITY };

	if (rl == NULL) {
		CHECK(rl != NULL);
		return;
	}
	/* Halved at once, held for RATELIMIT_HOLD_MS, then back linearly over RATELIMIT_RECOVER_MS. */
	ratelimit_penalize(rl, 1000, 0, 0.5);
	CHECK(ratelimit_rate(rl, 1000) == 5);
	CHECK(ratelimit_rate(rl, 1000 + RATELIMIT_HOLD_MS) == 5);
	CHECK(near(ratelimit_rate(rl, 1000 + RATELIMIT_HOLD_MS + RATELIMIT_RECOVER_MS / 2), 7.5));
	CHECK(ratelimit_rate(rl, 1000 + RATELIMIT_HOLD_MS + RATELIMIT_RECOVER_MS) == 10);
	CHECK(ratelimit_rate(rl, INT64_MAX / 2) == 10);
	/* The reduced rate spaces grants 200 ms apart. */
	CHECK(ratelimit_reserve(rl, 1000) == 0);
	CHECK(ratelimit_reserve(rl, 1000) == 200);
	CHECK(ratelimit_reserve(rl, 1000) == 400);
	/* Penalties compound from the rate in force, down to RATELIMIT_MIN_FACTOR. */
	ratelimit_penalize(rl, 2000, 0, 0.5);
	CHECK(ratelimit_rate(rl, 2000) == 2.5);
	for (int i = 0; i < 10; i++)
		ratelimit_penalize(rl, 2000, 0, 0.1);
	CHECK(near(ratelimit_rate(rl, 2000), 10 * RATELIMIT_MIN_FACTOR));
	/* A pause and a factor: the hold starts when the pause ends. */
	ratelimit_penalize(rl, 10000000, 5000, 0.5);
	CHECK(ratelimit_rate(rl, 10000000) == 5);
	CHECK(ratelimit_rate(rl, 10000000 + 5000 + RATELIMIT_HOLD_MS) == 5);
	CHECK(ratelimit_rate(rl, 10000000 + 5000 + RATELIMIT_HOLD_MS + RATELIMIT_RECOVER_MS) == 10);
	ratelimit_free(rl);

	/* Any factor outside (0, 1) leaves the rate alone; the pause still applies. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rl = bucket(10, 1);
		CHECK(rl != NULL);
		if (rl == NULL)
			continue;
		ratelimit_penalize(rl, 0, 100, bad[i]);
		CHECK(ratelimit_rate(rl, 0) == 10);
		CHECK(ratelimit_take(rl, 0) == 100);
		ratelimit_free(rl);
	}
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * True when, for every window [s_i, s_j] of the n grant times s (sorted here), the grants in it
 * number at most burst + rate * (s_j - s_i) / 1000. In one pass: (j - i + 1) - r * (s_j - s_i)
 * = (j + 1 - r * s_j) + (r * s_i - i), and the best i <= j is carried along.
 */
static bool
window_bound_holds(int64_t *s, size_t n, double rate_per_s, double burst, bool verbose)
{
	double r = rate_per_s / 1000, best = 0, worst = -1;
	size_t worst_j = 0;

	qsort(s, n, sizeof(*s), cmp_i64);
	for (size_t j = 0; j < n; j++) {
		double here = r * (double)s[j] - (double)j, excess;

		if (j == 0 || here > best)
			best = here;
		excess = (double)(j + 1) - r * (double)s[j] + best;
		if (excess > worst) {
			worst = excess;
			worst_j = j;
		}
	}
	if (worst > burst + 1e-6) {
		if (verbose)
			fprintf(stderr, "  %.6f grants in a window ending at %lld ms, bound %g + rate * W\n",
			    worst, (long long)s[worst_j], burst);
		return false;
	}
	return true;
}

/* The checker itself: it must refuse what breaks the bound, and pass what keeps to it. */
static void
test_window_checker(void)
{
	int64_t ok[] = { 0, 0, 0, 100, 200, 300 };  /* burst 3, then 10/s */
	int64_t bad1[] = { 0, 0, 0, 0 };            /* 4 at once with a burst of 3 */
	int64_t bad2[] = { 0, 0, 0, 100, 200, 299 }; /* one ms early */

	CHECK(window_bound_holds(ok, 6, 10, 3, true));
	CHECK(!window_bound_holds(bad1, 4, 10, 3, false));
	CHECK(!window_bound_holds(bad2, 6, 10, 3, false));
}

/*
 * An interval of 333.3 ms: grants fall on whole milliseconds, never early. With a burst of 1 the
 * bucket is full when each grant comes, so the bit that flowed in since is lost and the grants
 * are 334 ms apart; with a burst of 2 nothing is lost and they are 333 or 334 ms apart.
 */
static void
test_reserve_fractional_interval(void)
{
	static const int64_t want2[] = { 0, 0, 334, 667, 1000, 1334, 1667, 2000, 2334, 2667 };
	int64_t got[10];
	struct ratelimit *rl;

	rl = bucket(3, 1);
	CHECK(rl != NULL);
	if (rl != NULL) {
		for (int i = 0; i < 10; i++) {
			got[i] = ratelimit_reserve(rl, 0);
			CHECK(got[i] == 334 * i);
		}
		CHECK(window_bound_holds(got, 10, 3, 1, true));
		ratelimit_free(rl);
	}
	rl = bucket(3, 2);
	CHECK(rl != NULL);
	if (rl != NULL) {
		for (int i = 0; i < 10; i++) {
			got[i] = ratelimit_reserve(rl, 0);
			if (got[i] != want2[i])
				fprintf(stderr, "  grant %d at %lld, want %lld\n", i, (long long)got[i],
				    (long long)want2[i]);
			CHECK(got[i] == want2[i]);
		}
		CHECK(window_bound_holds(got, 10, 3, 2, true));
		ratelimit_free(rl);
	}
}

#define THREADS 4
#define CALLS 10000

struct race {
	struct ratelimit *rl;
	atomic_llong ticks; /* the simulated monotonic clock: one tick per call */
	atomic_int ready;   /* threads at the start line: they all start together */
	int ticks_per_ms;
	bool mix_take;       /* odd calls use ratelimit_take */
	int64_t grants[THREADS][CALLS]; /* scheduled grant times */
	size_t ngrants[THREADS];
	int bad[THREADS];    /* negative delays, or take waits of 0 or less that took nothing */
};

struct racer {
	struct race *race;
	int id;
};

static void *
racer_main(void *arg)
{
	struct racer *me = arg;
	struct race *race = me->race;

	atomic_fetch_add(&race->ready, 1);
	while (atomic_load(&race->ready) < THREADS)
		; /* spin: a barrier without the cost of a futex wake-up per thread */
	for (int i = 0; i < CALLS; i++) {
		int64_t now = (int64_t)atomic_fetch_add(&race->ticks, 1) / race->ticks_per_ms;
		int64_t d;

		if (race->mix_take && i % 2 == 1) {
			d = ratelimit_take(race->rl, now);
			if (d == 0)
				race->grants[me->id][race->ngrants[me->id]++] = now;
			else if (d < 0)
				race->bad[me->id]++;
			continue;
		}
		d = ratelimit_reserve(race->rl, now);
		if (d < 0)
			race->bad[me->id]++;
		race->grants[me->id][race->ngrants[me->id]++] = now + d;
	}
	return NULL;
}

/*
 * THREADS threads make CALLS calls each at rate 2000/s, burst 50, on a clock that advances one
 * ms every ticks_per_ms calls (over all threads); checks the window bound over every grant.
 */
static void
race(int ticks_per_ms, bool mix_take)
{
	static struct race r;
	struct racer racers[THREADS];
	pthread_t th[THREADS];
	int64_t *all = NULL, last = 0;
	size_t n = 0;
	int bad = 0;
	const double rate = 2000, burst = 50;

	memset(&r, 0, sizeof(r));
	atomic_init(&r.ticks, 0);
	atomic_init(&r.ready, 0);
	r.ticks_per_ms = ticks_per_ms;
	r.mix_take = mix_take;
	if ((r.rl = bucket(rate, burst)) == NULL) {
		CHECK(r.rl != NULL);
		return;
	}
	for (int i = 0; i < THREADS; i++) {
		racers[i].race = &r;
		racers[i].id = i;
		CHECK(pthread_create(&th[i], NULL, racer_main, &racers[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	ratelimit_free(r.rl);

	for (int i = 0; i < THREADS; i++) {
		n += r.ngrants[i];
		bad += r.bad[i];
	}
	CHECK(bad == 0);
	CHECK(!mix_take ? n == THREADS * CALLS : n > 0);
	CHECK((all = malloc(n * sizeof(*all))) != NULL);
	if (all == NULL)
		return;
	n = 0;
	for (int i = 0; i < THREADS; i++)
		for (size_t k = 0; k < r.ngrants[i]; k++)
			all[n++] = r.grants[i][k];
	CHECK(window_bound_holds(all, n, rate, burst, true));
	last = all[n - 1]; /* sorted by the check */
	if (!mix_take && ticks_per_ms > 2) {
		/*
		 * Offered faster than the rate: a queue builds, and the bucket wastes nothing, so the
		 * last grant is where a perfect bucket would put it: (n - burst) / rate.
		 */
		int64_t ideal = (int64_t)(((double)n - burst) * 1000 / rate);

		if (last < ideal || last > ideal + 1)
			fprintf(stderr, "  last grant at %lld ms, ideal %lld\n", (long long)last,
			    (long long)ideal);
		CHECK(last >= ideal && last <= ideal + 1);
	}
	free(all);
}

static void
test_threads_reserve_queue(void)
{
	race(4, false); /* 4 calls per ms for 2 tokens per ms: a queue of reservations */
}

static void
test_threads_reserve_idle(void)
{
	race(1, false); /* 1 call per ms: mostly at once, the burst refilling */
}

static void
test_threads_take_and_reserve(void)
{
	race(3, true);
}

int
main(void)
{
	RUN(test_new_errors);
	RUN(test_parse_errors);
	RUN(test_parse_valid);
	RUN(test_take_burst_then_rate);
	RUN(test_reserve_fairness);
	RUN(test_penalize_pause);
	RUN(test_penalize_factor);
	RUN(test_window_checker);
	RUN(test_reserve_fractional_interval);
	RUN(test_threads_reserve_queue);
	RUN(test_threads_reserve_idle);
	RUN(test_threads_take_and_reserve);
	return CHECK_DONE();
}
