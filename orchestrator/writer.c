/* writer.c - the writer thread: drains the outbox, commits each batch (store.c), reconnects when PostgreSQL is away. */
#include "writer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "store.h"

#define WRITER_RECONNECT_MAX_S 30

/* Returns a working connection, reconnecting with backoff until it gets one. */
static PGconn *
ensure_connected(struct writer *w, PGconn *c)
{
	int delay = 1;
	cf_err err;

	while (c == NULL || PQstatus(c) != CONNECTION_OK) {
		if (c) {
			PQreset(c);
			if (PQstatus(c) == CONNECTION_OK)
				break;
			PQfinish(c);
		}
		c = db_connect(w->db_url, &err);
		if (c)
			break;
		log_warn("writer: %s; retrying in %d s (results are kept in memory)", err.msg, delay);
		sleep((unsigned)delay);
		delay = delay * 2 > WRITER_RECONNECT_MAX_S ? WRITER_RECONNECT_MAX_S : delay * 2;
	}
	return c;
}

static void
free_list(struct outmsg *m)
{
	while (m) {
		struct outmsg *n = m->next;
		outmsg_free(m);
		m = n;
	}
}

static long
list_len(const struct outmsg *m)
{
	long n = 0;

	for (; m; m = m->next)
		n++;
	return n;
}

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	PGconn *c = NULL;
	bool closed = false;
	cf_err err;

	while (!closed) {
		struct outmsg *list = outbox_take_all(w->outbox, 200, &closed);
		if (list == NULL)
			continue;
		for (;;) {
			c = ensure_connected(w, c);
			if (store_batch(c, list, &err) == 0) {
				outbox_stored(list, true);
				w->committed += list_len(list);
				w->batches++;
				break;
			}
			if (PQstatus(c) != CONNECTION_OK) {
				log_warn("writer: %s; reconnecting", err.msg);
				continue;
			}
			/* PostgreSQL refused something: write one by one so the rest still lands */
			log_error("writer: batch refused: %s; writing its messages one by one", err.msg);
			for (struct outmsg *m = list; m; m = m->next) {
				for (;;) {
					c = ensure_connected(w, c);
					if (store_one(c, m, &err) == 0) {
						outmsg_stored(m, true);
						w->committed++;
						break;
					}
					if (PQstatus(c) == CONNECTION_OK) {
						log_error("writer: dropped a message: %s", err.msg);
						outmsg_stored(m, false);
						w->dropped++;
						break;
					}
				}
			}
			break;
		}
		free_list(list);
	}
	PQfinish(c);
	return NULL;
}

int
writer_start(struct writer *w, const char *db_url, struct outbox *ob, cf_err *err)
{
	int rc;

	memset(w, 0, sizeof(*w));
	w->db_url = db_url;
	w->outbox = ob;
	rc = pthread_create(&w->thread, NULL, writer_main, w);
	if (rc != 0) {
		cf_errf(err, "pthread_create writer: %s", strerror(rc));
		return -1;
	}
	return 0;
}

void
writer_join(struct writer *w)
{
	pthread_join(w->thread, NULL);
}
