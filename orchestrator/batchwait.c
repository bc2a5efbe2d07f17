/*
 * batchwait.c - waiting for a batch: polls the latest job of each certificate once a second (one
 * statement per poll, whatever the batch size) rather than LISTENing, since the channels that
 * exist announce new jobs, not ended ones; a second between polls costs nothing beside an ACME
 * order's own seconds.
 */
#include "batchwait.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

void
batchwait_count(const struct queue_job_state *st, size_t n, struct batchwait_counts *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		if (strcmp(st[i].state, "issued") == 0)
			out->issued++;
		else if (strcmp(st[i].state, "failed") == 0)
			out->failed++;
		else if (strcmp(st[i].state, "cancelled") == 0)
			out->cancelled++;
		else
			out->pending++;
	}
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
batchwait_run(PGconn *c, const int64_t *ids, size_t n, long timeout_s, bool progress,
    struct queue_job_state *st, cf_err *err)
{
	int64_t deadline = timeout_s > 0 ? now_ms() + (int64_t)timeout_s * 1000 : 0;
	struct batchwait_counts last = { -1, -1, -1, -1 }, now;

	for (;;) {
		if (queue_batch_state(c, ids, n, st, err) != 0)
			return -1;
		batchwait_count(st, n, &now);
		if (progress && memcmp(&now, &last, sizeof(now)) != 0) {
			char line[160];
			snprintf(line, sizeof(line), "waiting: %ld issued, %ld failed, %ld cancelled, %ld queued or running",
			    now.issued, now.failed, now.cancelled, now.pending);
			/* with --log-format json every line of standard error is an object */
			if (cf_log_get_format() == CF_LOG_JSON)
				log_info("%s", line);
			else
				fprintf(stderr, "%s\n", line);
		}
		last = now;
		if (now.pending == 0)
			return 0;
		if (deadline && now_ms() >= deadline)
			return 1;
		struct timespec second = { 1, 0 };
		nanosleep(&second, NULL);
	}
}

int
batchwait_print_json(FILE *f, int64_t run_id, const struct queue_cert *certs,
    const struct queue_job_state *st, size_t n)
{
	struct batchwait_counts k;
	json_t *root = NULL, *list;
	char *text = NULL;
	int rc = -1;

	batchwait_count(st, n, &k);
	root = json_pack("{s:I, s:I, s:I, s:I, s:I, s:[]}", "run_id", (json_int_t)run_id, "issued",
	    (json_int_t)k.issued, "failed", (json_int_t)k.failed, "cancelled", (json_int_t)k.cancelled,
	    "pending", (json_int_t)k.pending, "certificates");
	if (root == NULL || (list = json_object_get(root, "certificates")) == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		json_t *names = json_array(), *o;
		for (size_t j = 0; names && j < certs[i].nnames; j++)
			if (json_array_append_new(names, json_string(certs[i].names[j])) != 0)
				goto out;
		o = json_pack("{s:I, s:o, s:I, s:s}", "id", (json_int_t)st[i].certificate_id, "names", names,
		    "job_id", (json_int_t)st[i].job_id, "state", st[i].state);
		if (o == NULL || json_array_append_new(list, o) != 0)
			goto out;
		if (st[i].serial[0] && (json_object_set_new(o, "serial", json_string(st[i].serial)) != 0 ||
		    json_object_set_new(o, "not_after", json_string(st[i].not_after)) != 0))
			goto out;
	}
	if ((text = json_dumps(root, JSON_INDENT(2))) == NULL)
		goto out;
	fprintf(f, "%s\n", text);
	rc = 0;
out:
	free(text);
	json_decref(root);
	return rc;
}
