/*
 * bench_queue.c - queue-only throughput: claims ready no-op jobs with certfleet's own claim
 * (queue_claim) and completes them with the writer's own batched statements (store_batch), in
 * batches, until none is left; prints jobs per second. It holds a lease as a run does
 * (queue_heartbeat). With "claim-only", jobs are claimed and left running (the claim alone, to
 * compare with a claim-only SQL baseline).
 * Usage: bench_queue BATCH ACCOUNT_ID [claim-only] (CERTFLEET_DB).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "outbox.h"
#include "queue.h"
#include "store.h"

int
main(int argc, char **argv)
{
	int batch = argc > 1 ? atoi(argv[1]) : 50;
	const char *acct = argc > 2 ? argv[2] : "1";
	bool claim_only = argc > 3 && strcmp(argv[3], "claim-only") == 0;
	PGconn *c;
	cf_err err;
	long done = 0;
	int64_t t0, *cancel = NULL;
	size_t ncancel = 0;
	char owner[32];

	if ((c = db_connect(getenv("CERTFLEET_DB"), &err)) == NULL) {
		fprintf(stderr, "bench_queue: %s\n", err.msg);
		return 1;
	}
	snprintf(owner, sizeof(owner), "bench:%ld", (long)getpid());
	if (queue_heartbeat(c, owner, 600, &cancel, &ncancel, &err) != 0) {
		fprintf(stderr, "bench_queue: %s\n", err.msg);
		return 1;
	}
	free(cancel);
	t0 = cf_mono_ms();
	for (;;) {
		struct job *jobs = NULL;
		struct outmsg *head = NULL, **tail = &head;
		int n = 0;

		if (queue_claim(c, strtoll(acct, NULL, 10), batch, owner, &jobs, &n, &err) != 0) {
			fprintf(stderr, "bench_queue: %s\n", err.msg);
			return 1;
		}
		if (n == 0)
			break;
		for (struct job *j = jobs; j && !claim_only; j = j->next) {
			struct outmsg *m = outmsg_new(OUT_FAILED, j->id);
			m->problem_type = strdup("certfleet:noop");
			m->detail = strdup("no-op job of the queue benchmark");
			*tail = m;
			tail = &m->next;
		}
		if (!claim_only && store_batch(c, head, &err) != 0) {
			fprintf(stderr, "bench_queue: %s\n", err.msg);
			return 1;
		}
		while (head) {
			struct outmsg *m = head->next;
			outmsg_free(head);
			head = m;
		}
		while (jobs) {
			struct job *j = jobs->next;
			job_free(jobs);
			jobs = j;
		}
		done += n;
	}
	double secs = (cf_mono_ms() - t0) / 1000.0;
	printf("queue: %ld jobs claimed%s in %.2f s: %.0f jobs/s (batches of %d)\n", done,
	    claim_only ? "" : " and completed", secs, secs > 0 ? done / secs : 0.0, batch);
	if (!claim_only && queue_release(c, owner, &err) != 0)
		fprintf(stderr, "bench_queue: %s\n", err.msg);
	PQfinish(c);
	return 0;
}
