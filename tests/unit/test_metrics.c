/*
 * test_metrics.c - unit tests of lib/metrics.c and the address parsing of lib/metricsd.c: bad
 * addresses first, then the exposition format (HELP and label escaping, histogram buckets, +Inf,
 * _sum and _count), the bound on series, and four threads adding to one counter.
 */
#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "metrics.h"
#include "metricsd.h"

static char *
render_one(struct metrics_family *f)
{
	struct metrics_family *const fams[] = { f };
	cf_buf out = { 0 };

	if (metrics_render(fams, 1, &out) != 0) {
		cf_buf_free(&out);
		return NULL;
	}
	return out.data;
}

static void
test_addr_rejects(void)
{
	static const char *const bad[] = { "", "9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:94x", "localhost:9464", "::1:9464", "[::1]", "[::1]9464", "[127.0.0.1]:9464", ":9464" };
	struct metricsd_addr a;
	cf_err e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.msg[0] = '\0';
		CHECK(metricsd_parse_addr(bad[i], &a, &e) == -1);
		/* the message names what was given */
		CHECK(strstr(e.msg, bad[i]) != NULL);
	}
}

static void
test_addr_accepts(void)
{
	struct metricsd_addr a;
	cf_err e;

	CHECK(metricsd_parse_addr("127.0.0.1:9464", &a, &e) == 0);
	CHECK(a.ss.ss_family == AF_INET && a.len == sizeof(struct sockaddr_in));
	CHECK(ntohs(((struct sockaddr_in *)&a.ss)->sin_port) == 9464);
	CHECK(metricsd_parse_addr("[::1]:65535", &a, &e) == 0);
	CHECK(a.ss.ss_family == AF_INET6 && ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port) == 65535);
	CHECK(metricsd_parse_addr("0.0.0.0:1", &a, &e) == 0);
}

static struct metrics_family counter = METRICS_FAMILY("t_requests_total", "Requests \\ by \"kind\"\nsecond line.",
    METRICS_COUNTER, "kind", "status", NULL, 0);

static void
test_counter_format(void)
{
	metrics_add(metrics_series(&counter, "a\"b\\c\nd", "2xx"), 1);
	metrics_add(metrics_series(&counter, "a\"b\\c\nd", "2xx"), 2);
	metrics_add(metrics_series(&counter, "plain", "5xx"), 0.5);
	char *text = render_one(&counter);
	CHECK_STR(text, "# HELP t_requests_total Requests \\\\ by \"kind\"\\nsecond line.\n"
	                "# TYPE t_requests_total counter\n"
	                "t_requests_total{kind=\"a\\\"b\\\\c\\nd\",status=\"2xx\"} 3\n"
	                "t_requests_total{kind=\"plain\",status=\"5xx\"} 0.5\n");
	free(text);
}

static const double bounds[] = { 0.005, 1, 2.5 };
static struct metrics_family hist = METRICS_FAMILY("t_seconds", "Durations.", METRICS_HISTOGRAM, NULL, NULL, bounds, 3);

static void
test_histogram_format(void)
{
	struct metrics_series *s = metrics_series(&hist, NULL, NULL);
	double v[] = { 0.001, 0.005, 0.7, 3, 100 };

	for (size_t i = 0; i < 5; i++)
		metrics_observe(&hist, s, v[i]);
	char *text = render_one(&hist);
	/* cumulative buckets, le inclusive (0.005 falls in le="0.005"), +Inf equals _count */
	CHECK_STR(text, "# HELP t_seconds Durations.\n"
	                "# TYPE t_seconds histogram\n"
	                "t_seconds_bucket{le=\"0.005\"} 2\n"
	                "t_seconds_bucket{le=\"1\"} 3\n"
	                "t_seconds_bucket{le=\"2.5\"} 3\n"
	                "t_seconds_bucket{le=\"+Inf\"} 5\n"
	                "t_seconds_sum 103.706\n"
	                "t_seconds_count 5\n");
	free(text);
}

static struct metrics_family gauge = METRICS_FAMILY("t_jobs", "Jobs.", METRICS_GAUGE, "state", NULL, NULL, 0);
static struct metrics_family empty = METRICS_FAMILY("t_lag_seconds", "Lag.", METRICS_AGE, NULL, NULL, NULL, 0);

static void
test_gauge_and_age(void)
{
	metrics_set(metrics_series(&gauge, "ready", NULL), 7);
	metrics_add(metrics_series(&gauge, "ready", NULL), -2);
	metrics_set(metrics_series(&gauge, "running", NULL), INFINITY);
	char *text = render_one(&gauge);
	CHECK_STR(text, "# HELP t_jobs Jobs.\n# TYPE t_jobs gauge\nt_jobs{state=\"ready\"} 5\nt_jobs{state=\"running\"} +Inf\n");
	free(text);
	metrics_zero(&gauge);
	text = render_one(&gauge);
	CHECK_STR(text, "# HELP t_jobs Jobs.\n# TYPE t_jobs gauge\nt_jobs{state=\"ready\"} 0\nt_jobs{state=\"running\"} 0\n");
	free(text);
	/* a family without labels shows its one series before any use; an age of none is 0 */
	text = render_one(&empty);
	CHECK_STR(text, "# HELP t_lag_seconds Lag.\n# TYPE t_lag_seconds gauge\nt_lag_seconds 0\n");
	free(text);
	metrics_stamp(metrics_series(&empty, NULL, NULL), cf_mono_ms() - 1500);
	text = render_one(&empty);
	double age = -1;
	CHECK(text && sscanf(strstr(text, "\nt_lag_seconds ") + 15, "%lf", &age) == 1);
	CHECK(age >= 1.5 && age < 60);
	free(text);
}

static struct metrics_family many = METRICS_FAMILY("t_many_total", "Many.", METRICS_COUNTER, "account", NULL, NULL, 0);

static void
test_series_bounded(void)
{
	char name[32];

	for (int i = 0; i < METRICS_MAX_SERIES + 10; i++) {
		snprintf(name, sizeof(name), "acct%d", i);
		metrics_add(metrics_series(&many, name, NULL), 1);
	}
	CHECK(atomic_load(&many.nseries) == METRICS_MAX_SERIES);
	char *text = render_one(&many);
	/* the ten past the bound share one "other" series */
	CHECK(text && strstr(text, "t_many_total{account=\"other\"} 10\n") != NULL);
	CHECK(text && strstr(text, "t_many_total{account=\"acct63\"} 1\n") != NULL);
	CHECK(text && strstr(text, "acct64") == NULL);
	free(text);
}

static struct metrics_family raced = METRICS_FAMILY("t_raced_total", "Raced.", METRICS_COUNTER, "who", NULL, NULL, 0);
#define RACE_ADDS 100000

static void *
racer(void *arg)
{
	(void)arg;
	for (int i = 0; i < RACE_ADDS; i++)
		metrics_add(metrics_series(&raced, i % 2 ? "odd" : "even", NULL), 1);
	return NULL;
}

static void
test_threads(void)
{
	pthread_t th[4];

	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, racer, NULL) == 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CHECK(atomic_load(&raced.nseries) == 2);
	double sum = atomic_load(&raced.series[0].value) + atomic_load(&raced.series[1].value);
	CHECK(sum == 4.0 * RACE_ADDS);
}

static void
test_status_class(void)
{
	CHECK_STR(metrics_status_class(0), "error");
	CHECK_STR(metrics_status_class(201), "2xx");
	CHECK_STR(metrics_status_class(429), "429");
	CHECK_STR(metrics_status_class(404), "4xx");
	CHECK_STR(metrics_status_class(503), "5xx");
	CHECK_STR(metrics_status_class(999), "error");
}

int
main(void)
{
	RUN(test_addr_rejects);
	RUN(test_addr_accepts);
	RUN(test_counter_format);
	RUN(test_histogram_format);
	RUN(test_gauge_and_age);
	RUN(test_series_bounded);
	RUN(test_threads);
	RUN(test_status_class);
	return CHECK_DONE();
}
