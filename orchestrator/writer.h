/*
 * writer.h - the result writer thread: drains the workers' outbox and commits order progress,
 * records, results and failures to PostgreSQL in batches, then runs each message's stored step.
 * Nothing that carries a certificate, a key or an order URL is ever dropped: a refusal that may
 * pass (a lost connection, a full disk, a deadlock, ...) is waited out for as long as it lasts,
 * and a message PostgreSQL refuses for good goes to the local journal, its job failing with the
 * reason.
 */
#ifndef CF_WRITER_H
#define CF_WRITER_H

#include <pthread.h>
#include <stdbool.h>

#include "cf.h"
#include "journal.h"
#include "outbox.h"

struct writer {
	pthread_t thread;
	const char *db_url;
	struct outbox *outbox;
	struct journal *journal;  /* where refused messages that matter go */
	pthread_mutex_t lock;     /* guards busy and abandoned */
	struct outmsg *busy;      /* the batch being committed */
	bool abandoned;           /* writer_abandon journalled what was left */
	/* counts, read after writer_join (or racy reads for progress) */
	long committed;           /* messages committed */
	long issued;              /* certificates among them */
	long journalled;          /* messages the journal took instead */
	long dropped;             /* messages refused for good that the journal does not keep */
	long lost;                /* messages neither PostgreSQL nor the journal took (logged) */
	long batches;             /* transactions committed */
	long waits;               /* refusals and lost connections waited out */
	int64_t longest_wait_ms;  /* the longest time PostgreSQL refused in a row */
};

int writer_start(struct writer *w, const char *db_url, struct outbox *ob, struct journal *journal,
    cf_err *err) CF_MUST;

/* Waits for the writer to commit everything (close the outbox first). */
void writer_join(struct writer *w);

/*
 * For a run that must stop at once while PostgreSQL may hang: writes to the journal every message
 * that matters of the batch in the writer's hands and of the outbox, and returns how many. The
 * writer thread may go on (a commit that succeeds after this only duplicates the journal, whose
 * replay skips what is stored) or stay blocked; the caller ends the process without joining it.
 */
long writer_abandon(struct writer *w);

#endif
