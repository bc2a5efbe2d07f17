/*
 * outbox.h - what workers report to the result writer: order progress, records written,
 * certificates issued, failures. Workers never touch PostgreSQL; the writer commits these in batches.
 */
#ifndef CF_OUTBOX_H
#define CF_OUTBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "loop.h"

enum outmsg_kind {
	OUT_ORDER,          /* order_url known or its state changed: order_url, state, finalize/cert URLs */
	OUT_RECORD_WRITTEN, /* the provider wrote record fqdn=value */
	OUT_RECORD_VERIFIED,/* a CA validated a challenge with record fqdn=value */
	OUT_ISSUED,         /* certificate issued: the result fields */
	OUT_FAILED,         /* job failed: problem_type, detail */
	OUT_EVENT,          /* a line for the job's event log: kind, detail */
};

struct unsaved_orders;

struct outmsg {
	enum outmsg_kind kind;
	struct unsaved_orders *unsaved; /* OUT_ORDER "created": released when the message is done */
	struct loop *stored_loop; /* when set: stored_fn(stored_arg) runs on this loop once the
	                           * message is stored (or given up on) */
	loop_fn stored_fn;
	void *stored_arg;
	int64_t job_id;
	int64_t certificate_id;
	int64_t account_id;
	char *order_url;
	char *state;          /* OUT_ORDER: certfleet's order step */
	char *finalize_url;
	char *certificate_url;
	char *fqdn;           /* OUT_RECORD_* */
	char *value;
	char *issuer;         /* OUT_RECORD_*: issuer domain; OUT_ISSUED: issuer DN */
	char *provider;
	bool wildcard;
	bool confirmed;           /* OUT_RECORD_WRITTEN: seen at the authoritative servers */
	int variant;
	char *leaf_pem;       /* OUT_ISSUED */
	char *chain_pem;
	char *key_pem;
	char *serial;
	int64_t not_before;
	int64_t not_after;
	char *key_pem_order;  /* OUT_ORDER: the key sent with finalize (secret) */
	bool retry;           /* OUT_FAILED: the job goes back to the queue */
	int64_t retry_in_ms;  /* OUT_FAILED with retry: when to try again */
	char *problem_type;   /* OUT_FAILED */
	char *detail;         /* OUT_FAILED, OUT_EVENT */
	char *event_kind;     /* OUT_EVENT */
	struct outmsg *next;
};

struct outmsg *outmsg_new(enum outmsg_kind kind, int64_t job_id);
void outmsg_free(struct outmsg *m);

/* A multi-producer queue drained by one consumer. */
struct outbox {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct outmsg *head;
	struct outmsg *tail;
	long queued;          /* messages waiting */
	bool closed;          /* no more messages will come */
};

int outbox_init(struct outbox *ob);
void outbox_destroy(struct outbox *ob);
void outbox_post(struct outbox *ob, struct outmsg *m);
void outbox_close(struct outbox *ob);

/*
 * Takes every queued message (oldest first), waiting up to wait_ms for one. Sets *closed when the
 * outbox is closed and empty: the consumer is done.
 */
struct outmsg *outbox_take_all(struct outbox *ob, int wait_ms, bool *closed);

#endif
