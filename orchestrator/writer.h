/*
 * writer.h - the result writer thread: drains the workers' outbox and commits order progress,
 * records, results and failures to PostgreSQL in batches. A message leaves memory only once its
 * transaction has committed; when PostgreSQL is away the writer reconnects and retries.
 */
#ifndef CF_WRITER_H
#define CF_WRITER_H

#include <pthread.h>

#include "cf.h"
#include "outbox.h"

struct writer {
	pthread_t thread;
	const char *db_url;
	struct outbox *outbox;
	long committed;           /* messages committed */
	long dropped;             /* messages PostgreSQL refused on their own (logged) */
	long batches;             /* transactions committed */
};

int writer_start(struct writer *w, const char *db_url, struct outbox *ob, cf_err *err) CF_MUST;

/* Waits for the writer to commit everything (close the outbox first). */
void writer_join(struct writer *w);

#endif
