/* acme_int.h - what acme.c (transport, nonces, directory) and order.c (state machine) share. */
#ifndef CF_ACME_INT_H
#define CF_ACME_INT_H

#include <jansson.h>
#include <openssl/evp.h>

#include "acme.h"
#include "publish.h"

struct order;
struct authz;
struct acme_call;

/* Handler of a signed request's final response (after badNonce and Retry-After retries). */
typedef void (*acme_handler)(struct acme_call *call, struct http_req *req);

/* One signed POST: who asked, what to send, how often it was retried. */
struct acme_call {
	struct acme_engine *eng;
	struct order *order;
	struct authz *authz;         /* NULL for order-level requests */
	char *url;
	char *payload;               /* JSON text, NULL for POST-as-GET */
	const char *accept;          /* Accept header, NULL for JSON */
	acme_handler handler;
	int nonce_retries;           /* badNonce answers so far */
	int retries;                 /* transport errors, 429 and 5xx so far */
	int gate_class;              /* CA gate class, -1 when the gate does not apply */
	bool gate_waiting;           /* counted as waiting at the gate */
	bool gate_held;              /* counted in flight at the gate */
	struct loop_timer timer;     /* backoff before a retry */
	int limit_stage;             /* CA rate limits passed for this send (see call_wait_turn) */
	bool unsaved_slot;           /* a newOrder holding a slot of cfg.unsaved */
	struct limiter_wait wait;    /* the turn asked of a CA rate limit */
	struct acme_call *next;      /* nonce or gate wait list */
};

enum dir_state {
	DIR_NONE = 0,
	DIR_LOADING,
	DIR_READY,
	DIR_FAILED,
};

struct record_op;

struct acme_engine {
	struct loop *loop;
	struct acme_config cfg;      /* strings below are owned copies */
	EVP_PKEY *key;
	struct jws_signer *signer;   /* the account key, prepared for many signatures */
	struct key_generator *keys;  /* certificate keys made on this loop */
	char thumbprint[44];
	acme_job_done_fn done;
	void *done_arg;
	long orders;                 /* orders in flight */
	struct order *order_list;    /* the orders in flight, for cancellation */
	long keygen_pending;         /* keys asked of the keygen threads, not yet back */
	enum dir_state dir_state;
	char *dir_error;
	char *new_nonce_url;
	char *new_order_url;
	char *hash_prefix;           /* draft -02 meta accountHashPrefix, NULL under -01 */
	struct order *dir_waiters;   /* orders started before the directory was loaded */
	char **nonces;               /* unused Replay-Nonce values, newest last */
	size_t nnonces;
	size_t capnonces;
	struct acme_call *nonce_wait_head;
	struct acme_call *nonce_wait_tail;
	long nonce_waiting;
	int nonce_fetching;          /* newNonce requests in flight */
	struct acme_call *gate_wait_head; /* calls the CA gate holds back */
	struct acme_call *gate_wait_tail;
	struct acme_call *gate_retry;    /* calls taken off the wait list, to retry this round */
	struct acme_call *unsaved_head;  /* newOrders waiting for a slot of cfg.unsaved */
	struct acme_call *unsaved_tail;
	struct loop_timer unsaved_timer; /* looks for free slots again */
	struct record_op **records;  /* hash of records this engine wrote or is writing */
	struct publisher *publisher; /* publishes and confirms records through providers */
	unsigned seed;               /* rand_r state for poll jitter */
	char *known_chain;           /* the last certificate chain checked (they repeat) */
};

/* Request classes the CA gate keeps apart. */
enum {
	GATE_NONE = -1,
	GATE_NEW_ORDER = 0,
	GATE_AUTHZ = 1,
};

/*
 * Sends a signed POST (payload NULL = POST-as-GET) for order (and authz); handler gets the
 * answer. gate_class is GATE_NEW_ORDER, GATE_AUTHZ or GATE_NONE.
 */
void acme_call_start(struct acme_engine *eng, struct order *order, struct authz *authz,
    const char *url, const char *payload, const char *accept, int gate_class, acme_handler handler);

/* The problem document of a failed response: *type and *detail are malloc'd (never NULL). */
void acme_problem(const struct http_req *req, char **type, char **detail);

/* Parses a JSON response body; NULL when it is not JSON. */
json_t *acme_json(const struct http_req *req);

/* Starts loading the directory if nobody has; orders wait in dir_waiters until it is ready. */
void acme_directory_load(struct acme_engine *eng);

/* An RFC 3339 UTC time ("expires") as cf_mono_ms() time; 0 when absent or unreadable. */
int64_t acme_time_to_mono(const char *rfc3339);

/* order.c: frees the engine's record bookkeeping. */
void acme_records_free(struct acme_engine *eng);

/* order.c: true once the order has ended (issued or failed); late answers are then ignored. */
bool order_ended(const struct order *o);

/* order.c: the directory is loaded (or failed); start the orders waiting for it. */
void order_directory_ready(struct acme_engine *eng);

/* order.c: keeps the order alive while a call is out for it. */
void order_ref(struct order *o);
void order_unref(struct order *o);
/* For newOrder's handler: the order's "created" message m takes over the call's unsaved slot. */
void acme_call_hand_slot(struct acme_call *call, struct outmsg *m);

/* order.c: true when the order renews a certificate issued before (exempt from new-order limits). */
bool order_is_renewal(const struct order *o);
/* order.c: fails the order with a problem (type may be a certfleet: reason). */
void order_fail(struct order *o, const char *type, const char *detail);

#endif
