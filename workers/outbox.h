/*
 * outbox.h - what workers report to the result writer: order progress, records written,
 * certificates issued, failures. Workers never touch PostgreSQL; the writer commits these in batches.
 */
#ifndef CF_OUTBOX_H
#define CF_OUTBOX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "loop.h"

/*
 * Orders the CA created whose URL is not committed to PostgreSQL yet, counted for the whole
 * process. A crash orphans those orders (the next attempt cannot resume them and orders anew), so
 * capping them caps what a crash can cost. A newOrder waits while cap are unsaved; the writer's
 * commit of the order's URL releases its slot.
 */
struct unsaved_orders {
	atomic_long n;
	long cap;                      /* at least 1 */
};

/* Takes a slot: true, or false when all cap are taken. Thread-safe. */
bool unsaved_orders_take(struct unsaved_orders *u);
/* Gives back one slot (NULL: nothing). Thread-safe. */
void unsaved_orders_release(struct unsaved_orders *u);

/*
 * A poster's wish to hear that its message was stored: the writer's stored step sets stored
 * and posts task to loop. Owned by the poster (an order embeds it), alive until task runs.
 */
struct outmsg_ack {
	struct loop *loop;
	struct loop_task task;
	bool stored;              /* the commit took the message (false: it was given up on) */
};

enum outmsg_kind {
	OUT_ORDER,          /* order_url known or its state changed: order_url, state, finalize/cert URLs */
	OUT_RECORD_WRITTEN, /* the provider wrote record fqdn=value */
	OUT_RECORD_VERIFIED,/* a CA validated a challenge with record fqdn=value */
	OUT_ISSUED,         /* certificate issued: the result fields */
	OUT_FAILED,         /* job failed: problem_type, detail */
	OUT_EVENT,          /* a line for the job's event log: kind, detail */
	OUT_ACCOUNT,        /* what a download showed of the account's CA: offers_alternates */
};

struct outmsg {
	enum outmsg_kind kind;
	struct unsaved_orders *unsaved; /* OUT_ORDER "created": released by the stored step */
	struct outmsg_ack *ack;   /* told by the stored step, NULL = nobody waits */
	int64_t job_id;
	int64_t posted_ms;        /* cf_mono_ms() when posted: the writer's lag */
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
	bool offers_alternates; /* OUT_ACCOUNT: the download carried Link rel="alternate" */
	struct outmsg *next;
};

struct outmsg *outmsg_new(enum outmsg_kind kind, int64_t job_id);
/* Frees m (wiping its key material), and nothing else. */
void outmsg_free(struct outmsg *m);

/*
 * The writer's step after each commit, for every message it took (stored true) or gave up on
 * (false): releases the message's unsaved-order slot and tells the poster through its ack. It
 * cannot fail, and it leaves the message to outmsg_free.
 */
void outmsg_stored(struct outmsg *m, bool stored);
/* outmsg_stored for each message of a list. */
void outbox_stored(struct outmsg *list, bool stored);

/* A multi-producer queue drained by one consumer. */
struct outbox {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct outmsg *head;
	struct outmsg *tail;
	long queued;          /* messages waiting */
	long peak;            /* the most that ever waited at once */
	long wake_at;         /* queued count at which a post wakes the consumer */
	bool closed;          /* no more messages will come */
};

int outbox_init(struct outbox *ob);
void outbox_destroy(struct outbox *ob);
void outbox_post(struct outbox *ob, struct outmsg *m);
/* The writer committed (or gave up on) what it last took: the writer lag restarts at the next waiting message. */
void outbox_batch_done(struct outbox *ob);
void outbox_close(struct outbox *ob);

/* Messages waiting now (taken under the lock, so any thread may ask). */
long outbox_waiting(struct outbox *ob);

/*
 * Takes every queued message (oldest first), waiting up to wait_ms for one. Sets *closed when the
 * outbox is closed and empty: the consumer is done.
 */
struct outmsg *outbox_take_all(struct outbox *ob, int wait_ms, bool *closed);

/*
 * outbox_take_all for a consumer that commits in groups: once a message is there, it waits on
 * until the oldest has waited linger_ms or max are queued, whichever comes first, so that one
 * commit carries what many orders posted at about the same time. Closing the outbox ends the wait.
 */
struct outmsg *outbox_take_batch(struct outbox *ob, int wait_ms, int linger_ms, long max, bool *closed);

#endif
