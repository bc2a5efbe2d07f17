/*
 * acme.h - one worker's ACME (RFC 8555) transport: the directory, a pool of nonces fed by every
 * Replay-Nonce header, and signed requests that survive badNonce, 429/503 with Retry-After and
 * transport errors. It knows requests, not orders: the order engine (engine.h) builds on it.
 * Everything runs on the worker's loop and never blocks.
 */
#ifndef CF_ACME_H
#define CF_ACME_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cagate.h"
#include "cf.h"
#include "http.h"
#include "limiter.h"
#include "loop.h"
#include "outbox.h"

/* Rate limits towards the CA (orchestrator/calimits.h); NULL members limit nothing. */
struct acme_limits {
	struct limiter *new_nonce;     /* newNonce requests */
	struct limiter *new_order;     /* newOrder requests */
	struct limiter *other;         /* every other request to the CA */
	struct limiter *account_orders; /* new orders of the account, renewals exempt */
};

/* Request classes the CA gate keeps apart. */
enum {
	GATE_NONE = -1,
	GATE_NEW_ORDER = 0,
	GATE_AUTHZ = 1,
};

struct acme_client_config {
	const char *directory_url;
	const char *account_url;       /* the JWS kid */
	const char *key_pem;           /* account key; parsed once, never kept or logged */
	struct http_settings http;
	const struct http_transport *transport; /* NULL = the loop's libcurl multi handle */
	struct ca_gate *gate;          /* keeps newOrder and authorization fetches apart; NULL = off */
	const struct acme_limits *limits; /* NULL = none */
	struct unsaved_orders *unsaved; /* NULL = newOrder never waits for the writer */
	loop_fn directory_done;        /* runs on the loop when a directory load ends (either way) */
	void *directory_arg;
};

enum acme_dir_state {
	ACME_DIR_NONE = 0,
	ACME_DIR_LOADING,
	ACME_DIR_READY,
	ACME_DIR_FAILED,               /* only while directory_done runs; then NONE again */
};

/* What the directory said; read it through acme_client_directory. */
struct acme_directory {
	enum acme_dir_state state;
	char *error;                   /* ACME_DIR_FAILED: why */
	char *new_nonce_url;
	char *new_order_url;
	char *hash_prefix;             /* draft -02 meta accountHashPrefix, NULL under -01 */
	char **profiles;               /* the names of meta.profiles (draft-aaron-acme-profiles) */
	size_t nprofiles;              /* 0: the CA offers no profiles */
};

/* True when the directory offers the certificate profile name. */
bool acme_directory_has_profile(const struct acme_directory *d, const char *name);

struct acme_client;
struct acme_call;

/*
 * The answer to a signed request, after badNonce and Retry-After retries, on the loop thread.
 * req NULL: the request could not be made at all (call->error says why). The transport frees req
 * and the call after this returns.
 */
typedef void (*acme_reply_fn)(struct acme_call *call, struct http_req *req);

struct acme_request {
	const char *url;
	const char *payload;           /* JSON text, NULL for POST-as-GET */
	const char *accept;            /* Accept header, NULL for JSON */
	int gate_class;                /* GATE_NEW_ORDER, GATE_AUTHZ or GATE_NONE */
	bool renewal;                  /* a newOrder exempt from the account's new-order limit */
	const char *endpoint;          /* a static name for metrics ("newOrder", "authz"), NULL: "other" */
};

/* One signed POST in flight. The owner's fields are passed back untouched. */
struct acme_call {
	void *owner;                   /* the owner's: who asked */
	void *sub;                     /* the owner's: a part of it (an authorization), or NULL */
	int tag;                       /* the owner's: which request this is */
	char error[256];               /* why the request could not be made (reply with req NULL) */
	/* the transport's */
	struct acme_client *client;
	char *url;
	char *payload;
	const char *accept;
	acme_reply_fn reply;
	bool renewal;
	int nonce_retries;             /* badNonce answers so far */
	int retries;                   /* transport errors, 429 and 5xx so far */
	int gate_class;                /* CA gate class, GATE_NONE when the gate does not apply */
	const char *endpoint;          /* the request's name in metrics (static) */
	bool gate_waiting;             /* counted as waiting at the gate */
	bool gate_held;                /* counted in flight at the gate */
	struct loop_timer timer;       /* backoff before a retry */
	int limit_stage;               /* CA rate limits passed for this send (see call_wait_turn) */
	bool unsaved_slot;             /* a newOrder holding a slot of cfg.unsaved */
	struct limiter_wait wait;      /* the turn asked of a CA rate limit */
	struct acme_call *next;        /* nonce, gate or slot wait list */
};

/* NULL with err set (an unreadable key, a missing URL). */
struct acme_client *acme_client_new(struct loop *loop, const struct acme_client_config *cfg, cf_err *err) CF_MUST;
/* Only when no call is in flight. */
void acme_client_free(struct acme_client *c);

/* The account key's RFC 7638 thumbprint (43 characters). */
const char *acme_client_thumbprint(const struct acme_client *c);

/* The directory as loaded so far. */
const struct acme_directory *acme_client_directory(const struct acme_client *c);

/* Starts loading the directory unless it is loading or loaded; directory_done follows. */
void acme_directory_load(struct acme_client *c);

/*
 * Sends a signed request; reply(call, req) follows on the loop thread, or inside this call when
 * the request cannot be made at all (req NULL). A newOrder (GATE_NEW_ORDER) first waits for a
 * slot of cfg.unsaved.
 */
void acme_send(struct acme_client *c, const struct acme_request *r, acme_reply_fn reply, void *owner,
    void *sub, int tag);

/*
 * For a newOrder's reply: the slot of cfg.unsaved the call holds passes to the caller (to the
 * message that stores the new order's URL), or NULL when it holds none.
 */
struct unsaved_orders *acme_call_take_slot(struct acme_call *call);

/*
 * Retries up to max requests that waited on the gate (on the loop thread, after a wake-up);
 * true when some are left for the next round.
 */
bool acme_client_wake(struct acme_client *c, int max);

/* The problem document of a failed response: *type and *detail are malloc'd (never NULL). */
void acme_problem(const struct http_req *req, char **type, char **detail);

/* Parses a JSON response body; NULL when it is not JSON. */
json_t *acme_json(const struct http_req *req);

/* An RFC 3339 UTC time ("expires") as cf_mono_ms() time; 0 when absent or unreadable. */
int64_t acme_time_to_mono(const char *rfc3339);

#endif
